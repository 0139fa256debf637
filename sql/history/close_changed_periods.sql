UPDATE decision_history
SET to_run = $run_id, to_seq = $run_seq
WHERE to_run IS NULL
  AND record_id IN (SELECT record_id FROM decision_changes WHERE run_id = $run_id)
