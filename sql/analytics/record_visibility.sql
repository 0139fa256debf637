-- One row per record as of the latest run, with a keyed pseudonym instead of
-- the personnummer: HMAC-shaped double hash, so the key is needed to link it.
-- $only_records (ids, or NULL for all): the rows an incremental build replaces.
WITH wanted AS (
    SELECT DISTINCT unnest(CAST($only_records AS VARCHAR[])) AS record_id
),
decided AS (
    SELECT *
    FROM decisions
    WHERE CAST($only_records AS VARCHAR[]) IS NULL
       OR record_id IN (SELECT record_id FROM wanted)
),
pseudonyms AS (
    SELECT
        patient_id,
        substr(sha256($key || ':' || sha256($key || ':' || patient_id)), 1, 32) AS patient_key
    FROM (SELECT DISTINCT patient_id FROM decided WHERE patient_id IS NOT NULL)
)
SELECT
    record_id,
    source_system,
    care_unit_hsa_id,
    care_unit_name,
    info_type,
    documented_date,
    visible,
    reason,
    reasons,
    -- Hidden by a unit-name pattern alone: the unit's HSA-id is missing from the rule file.
    exempt_unit_by_name_only,
    rules_version,
    run_id,
    pseudonym.patient_key
FROM decided
-- Computed once per patient, not once per record.
LEFT JOIN pseudonyms AS pseudonym USING (patient_id)
