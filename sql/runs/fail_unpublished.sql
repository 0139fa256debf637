-- A run recorded as published whose snapshot never went live did not publish.
UPDATE runs
SET status = 'failed', exit_code = 1,
    message = 'killed after recording, before its feed went live'
WHERE run_id = $run_id
