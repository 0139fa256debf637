-- Records per reason at every published run, from the decision history: a
-- period counts for the runs from its from_seq up to (not including) its
-- to_seq, so +1 where it opens and -1 where it closes, summed in run order.
-- Counts only: no record ids, no patients.
WITH published AS (
    SELECT run_id, run_seq, as_of, rules_version
    FROM runs
    WHERE run_seq IS NOT NULL
),
moves AS (
    SELECT reason, from_seq AS run_seq, count(*) AS delta
    FROM decision_history
    GROUP BY reason, from_seq
    UNION ALL
    SELECT reason, to_seq AS run_seq, -count(*) AS delta
    FROM decision_history
    WHERE to_seq IS NOT NULL
    GROUP BY reason, to_seq
),
net AS (
    SELECT reason, run_seq, sum(delta) AS delta
    FROM moves
    GROUP BY reason, run_seq
),
grid AS (
    SELECT p.run_id, p.run_seq, p.as_of, p.rules_version, r.reason
    FROM published AS p
    CROSS JOIN (SELECT DISTINCT reason FROM net) AS r
),
counted AS (
    SELECT g.run_id, g.run_seq, g.as_of, g.rules_version, g.reason,
           CAST(sum(coalesce(n.delta, 0)) OVER (
               PARTITION BY g.reason ORDER BY g.run_seq
           ) AS BIGINT) AS records
    FROM grid AS g
    LEFT JOIN net AS n USING (reason, run_seq)
)
SELECT run_id, run_seq, as_of, rules_version, reason, records
FROM counted
WHERE records > 0
ORDER BY run_seq, reason
