-- What each rule change did: the runs whose rules differ from the previous published
-- run's, their changed records by direction, system and reason (the reason after the
-- change for records hidden or kept hidden, the reason before it for records now shown
-- or gone).
WITH published AS (
    SELECT run_id, run_seq, as_of, rules_version,
           lag(rules_version) OVER (ORDER BY run_seq) AS previous_rules_version
    FROM runs
    WHERE run_seq IS NOT NULL
)
SELECT p.run_seq, p.as_of, p.previous_rules_version, p.rules_version, c.direction,
       c.source_system,
       CASE WHEN c.after_visible THEN coalesce(c.before_reason, 'shown')
            ELSE coalesce(c.after_reason, c.before_reason) END AS reason,
       count(*) AS records
FROM published AS p
JOIN decision_changes AS c USING (run_id)
WHERE p.previous_rules_version IS NOT NULL
  AND p.rules_version <> p.previous_rules_version
GROUP BY ALL
ORDER BY p.run_seq, c.direction, c.source_system, reason
