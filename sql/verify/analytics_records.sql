-- The analysts' `record_visibility` (attached as `a`) against what the
-- warehouse's decisions give (`expected_record_visibility`), patient keys aside,
-- matched by record id: rows for records not decided, decided records with no
-- row, records whose row differs in any column, and record ids that appear
-- more than once (counted there alone). Rows compare as whole structs, so
-- every column counts without naming one here.
WITH analysts AS (
    SELECT * EXCLUDE (patient_key) FROM a.record_visibility
),
expected AS (
    SELECT * EXCLUDE (patient_key) FROM expected_record_visibility
),
repeated AS (
    SELECT record_id FROM analysts GROUP BY record_id HAVING count(*) > 1
),
matched AS (
    SELECT
        analysts.record_id AS analysts_id,
        expected.record_id AS expected_id,
        analysts IS DISTINCT FROM expected AS differs
    FROM analysts
    FULL JOIN expected ON analysts.record_id = expected.record_id
)
SELECT
    count(*) FILTER (WHERE expected_id IS NULL) AS not_decided,
    count(*) FILTER (WHERE analysts_id IS NULL) AS missing,
    count(*) FILTER (
        WHERE differs AND analysts_id IS NOT NULL AND expected_id IS NOT NULL
          AND analysts_id NOT IN (SELECT record_id FROM repeated)
    ) AS differing,
    (SELECT count(*) FROM repeated) AS repeated
FROM matched
