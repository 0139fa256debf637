-- The analysts' `decision_changes` against what the warehouse's changes give
-- (`expected_changes`), as multisets: rows only the analysts' have, rows only
-- the warehouse's have.
SELECT
    (SELECT count(*) FROM (
        SELECT * FROM a.decision_changes EXCEPT ALL SELECT * FROM expected_changes
    )) AS not_in_warehouse,
    (SELECT count(*) FROM (
        SELECT * FROM expected_changes EXCEPT ALL SELECT * FROM a.decision_changes
    )) AS missing
