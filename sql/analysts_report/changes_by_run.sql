-- Records changed by each published run, by direction. Counted per run id before
-- the join: the runs table is small, the changes are millions.
WITH counted AS (
    SELECT run_id, direction, count(*) AS records
    FROM decision_changes
    GROUP BY run_id, direction
)
SELECT r.run_seq, r.as_of, r.rules_version, c.direction, sum(c.records)::BIGINT AS records
FROM counted AS c
JOIN runs AS r USING (run_id)
GROUP BY r.run_seq, r.as_of, r.rules_version, c.direction
ORDER BY r.run_seq, c.direction
