-- Runs other than the live one ($run, started at $t) whose decisions are in
-- `decisions` although they did not publish before it.
WITH deciding_runs AS (
    SELECT DISTINCT run_id FROM w.decisions
)
SELECT count(*)
FROM deciding_runs AS d
LEFT JOIN w.runs AS r USING (run_id)
WHERE d.run_id <> $run
  AND NOT (coalesce(r.status = 'published', false)
           AND coalesce(r.started_at < $t, false))
