-- Record what this run's decisions change against the open history periods. With
-- $only_records set (a nightly run that redid only those), the rest is
-- unchanged by construction and not compared.
INSERT INTO decision_changes
WITH wanted_records AS (
    SELECT DISTINCT unnest(CAST($only_records AS VARCHAR[])) AS record_id
),
decided AS (
    SELECT *
    FROM decisions
    WHERE CAST($only_records AS VARCHAR[]) IS NULL OR record_id IN (SELECT record_id FROM wanted_records)
),
open_periods AS (
    SELECT record_id, visible, reason, reasons
    FROM decision_history
    WHERE to_run IS NULL
      AND (CAST($only_records AS VARCHAR[]) IS NULL OR record_id IN (SELECT record_id FROM wanted_records))
),
compared AS (
    SELECT
        coalesce(d.record_id, o.record_id) AS record_id,
        d.source_system, d.care_unit_hsa_id, d.care_unit_name, d.info_type,
        o.visible AS before_visible, o.reason AS before_reason, o.reasons AS before_reasons,
        d.visible AS after_visible, d.reason AS after_reason, d.reasons AS after_reasons
    FROM decided AS d
    FULL OUTER JOIN open_periods AS o USING (record_id)
)
SELECT
    $run_id AS run_id,
    record_id, source_system, care_unit_hsa_id, care_unit_name, info_type,
    CASE
        WHEN before_visible IS NULL AND after_visible THEN 'new_shown'
        WHEN before_visible IS NULL THEN 'new_hidden'
        WHEN after_visible IS NULL THEN 'gone'
        WHEN NOT before_visible AND after_visible THEN 'shown'
        WHEN before_visible AND NOT after_visible THEN 'hidden'
        ELSE 'reason_changed'
    END AS direction,
    before_visible, before_reason, after_visible, after_reason
FROM compared
WHERE before_visible IS DISTINCT FROM after_visible
   OR before_reasons IS DISTINCT FROM after_reasons
