-- The latest published run: what an incremental run may build on.
SELECT run_id, as_of, rules_version, partitions, snapshot
FROM runs
WHERE status = 'published'
ORDER BY run_seq DESC
LIMIT 1
