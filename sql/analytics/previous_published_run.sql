-- The published run just before $run_id in the decision history's order (NULL if none).
SELECT run_id
FROM runs
WHERE run_seq < (SELECT run_seq FROM runs WHERE run_id = $run_id)
ORDER BY run_seq DESC
LIMIT 1
