-- The latest published run.
SELECT run_id
FROM w.runs
WHERE status = 'published'
ORDER BY run_seq DESC NULLS LAST, started_at DESC
LIMIT 1
