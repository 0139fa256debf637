-- A run still recorded as running died: it is closed as failed.
UPDATE runs
SET status = 'failed', ended_at = coalesce(ended_at, $now),
    exit_code = 1, message = 'the run was killed before it finished'
WHERE status = 'running'
