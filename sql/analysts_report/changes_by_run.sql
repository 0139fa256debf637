-- Records changed by each published run, by direction.
SELECT r.run_seq, r.as_of, r.rules_version, c.direction, count(*) AS records
FROM decision_changes AS c
JOIN runs AS r USING (run_id)
GROUP BY r.run_seq, r.as_of, r.rules_version, c.direction
ORDER BY r.run_seq, c.direction
