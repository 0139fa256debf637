-- What each published run changed, without personal data.
-- $only_run (a run id, or NULL for all): the rows an incremental build appends.
SELECT c.run_id, r.as_of, r.rules_version, c.record_id, c.source_system, c.care_unit_hsa_id,
       c.care_unit_name, c.info_type, c.direction, c.before_visible, c.before_reason,
       c.after_visible, c.after_reason
FROM decision_changes AS c
JOIN runs AS r USING (run_id)
WHERE CAST($only_run AS VARCHAR) IS NULL OR c.run_id = $only_run
-- Not sorted: rows are read by query (ORDER BY run_seq or as_of), never by
-- position, and a nightly patch appends its rows anyway. Sorting a whole
-- build's history cost 3.7 s of 7.8 s at 10 M records (at 1 M: 2.29 s -> 2.11 s
-- for the whole analysts' build, peak 846 -> 696 MiB).
