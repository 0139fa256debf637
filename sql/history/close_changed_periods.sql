-- Close the open period of every record this run changed. A record that appeared
-- (new_shown, new_hidden) had no open period, so only the other directions are
-- looked up: on a first run, that is none of its millions of changes.
UPDATE decision_history
SET to_run = $run_id, to_seq = $run_seq
WHERE to_run IS NULL
  AND record_id IN (
      SELECT record_id
      FROM decision_changes
      WHERE run_id = $run_id AND direction NOT IN ('new_shown', 'new_hidden')
  )
