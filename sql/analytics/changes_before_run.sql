-- How many rows of the analysts' `decision_changes` (analytics/decision_changes) come
-- from runs other than $run_id: what a live database built before this run must hold
-- for its rows to be reused.
SELECT count(*)
FROM decision_changes AS c
JOIN runs AS r USING (run_id)
WHERE c.run_id <> $run_id
