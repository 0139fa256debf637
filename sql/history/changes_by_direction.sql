-- The run's changes counted by direction.
SELECT direction, count(*)
FROM decision_changes
WHERE run_id = $run_id
GROUP BY direction
ORDER BY direction
