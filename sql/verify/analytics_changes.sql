-- The analysts' `decision_changes` against what the warehouse's changes give
-- (`expected_decision_changes`), matched by run and record (a record changes at most
-- once a run): changes only the analysts' have, changes only the warehouse's
-- have, changes that differ in any column, and (run, record) pairs either
-- side holds more than once (counted there alone).
WITH repeated AS (
    SELECT run_id, record_id FROM a.decision_changes GROUP BY ALL HAVING count(*) > 1
    UNION
    SELECT run_id, record_id FROM expected_decision_changes GROUP BY ALL HAVING count(*) > 1
),
matched AS (
    SELECT
        coalesce(analysts.run_id, expected.run_id) AS run_id,
        coalesce(analysts.record_id, expected.record_id) AS record_id,
        analysts.record_id IS NULL AS missing,
        expected.record_id IS NULL AS not_in_warehouse,
        analysts IS DISTINCT FROM expected AS differs
    FROM a.decision_changes AS analysts
    FULL JOIN expected_decision_changes AS expected
        ON analysts.run_id = expected.run_id AND analysts.record_id = expected.record_id
)
SELECT
    count(*) FILTER (WHERE not_in_warehouse) AS not_in_warehouse,
    count(*) FILTER (WHERE missing) AS missing,
    count(*) FILTER (
        WHERE differs AND NOT missing AND NOT not_in_warehouse
          AND (run_id, record_id) NOT IN (SELECT (run_id, record_id) FROM repeated)
    ) AS differing,
    (SELECT count(*) FROM repeated) AS repeated
FROM matched
