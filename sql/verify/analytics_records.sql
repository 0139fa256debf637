-- The analysts' `record_visibility` (attached as `a`) against what the
-- warehouse's decisions give (`expected_visibility`), patient keys aside:
-- rows for records not decided, decided records with no row, records whose
-- one row differs, and record ids that appear more than once (counted there
-- alone).
WITH analysts AS (
    SELECT * EXCLUDE (patient_key) FROM a.record_visibility
),
expected AS (
    SELECT * EXCLUDE (patient_key) FROM expected_visibility
),
repeated AS (
    SELECT record_id FROM analysts GROUP BY record_id HAVING count(*) > 1
),
unmatched AS (
    SELECT * FROM analysts
    EXCEPT ALL
    SELECT * FROM expected
)
SELECT
    (SELECT count(*) FROM analysts
     WHERE record_id IS NULL OR record_id NOT IN (SELECT record_id FROM expected)) AS not_decided,
    (SELECT count(*) FROM expected
     WHERE record_id NOT IN (SELECT record_id FROM analysts WHERE record_id IS NOT NULL)) AS missing,
    (SELECT count(DISTINCT record_id) FROM unmatched
     WHERE record_id IN (SELECT record_id FROM expected)
       AND record_id NOT IN (SELECT record_id FROM repeated)) AS differing,
    (SELECT count(*) FROM repeated) AS repeated
