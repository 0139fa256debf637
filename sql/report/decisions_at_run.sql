-- Each record's decision as of the published run $run_seq, for `jvn stats` when
-- the live snapshot is not the latest run's (after `jvn rollback`): the state
-- at run R is the history periods with from_seq <= R < to_seq (an open period
-- has no to_seq). Its system, unit and type are those of its latest
-- `decision_changes` row up to that run, as `jvn diff` names them.
WITH stated AS (
    SELECT record_id, visible, reason
    FROM decision_history
    WHERE from_seq <= $run_seq AND (to_seq IS NULL OR to_seq > $run_seq)
),
dims AS (
    SELECT c.record_id, c.source_system, c.care_unit_hsa_id, c.care_unit_name, c.info_type
    FROM decision_changes AS c
    JOIN runs AS r USING (run_id)
    WHERE r.run_seq <= $run_seq
      AND c.direction <> 'gone'
      AND c.record_id IN (SELECT record_id FROM stated)
    QUALIFY row_number() OVER (PARTITION BY c.record_id ORDER BY r.run_seq DESC) = 1
)
SELECT
    s.record_id,
    coalesce(d.source_system, split_part(s.record_id, ':', 1)) AS source_system,
    d.care_unit_hsa_id,
    d.care_unit_name,
    d.info_type,
    s.visible,
    s.reason
FROM stated AS s
LEFT JOIN dims AS d USING (record_id)
