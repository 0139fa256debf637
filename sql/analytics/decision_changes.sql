-- What each published run changed, without personal data.
-- $only_run (a run id, or NULL for all): the rows an incremental build appends.
SELECT c.run_id, r.as_of, r.rules_version, c.record_id, c.source_system, c.care_unit_hsa_id,
       c.care_unit_name, c.info_type, c.direction, c.before_visible, c.before_reason,
       c.after_visible, c.after_reason
FROM decision_changes AS c
JOIN runs AS r USING (run_id)
WHERE CAST($only_run AS VARCHAR) IS NULL OR c.run_id = $only_run
ORDER BY r.run_seq, c.record_id
