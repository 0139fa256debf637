-- A feed snapshot's change set: the records that appeared, changed (any column
-- differs: a new version, new content, a new rules version, a column added or
-- taken away) or disappeared, comparing the new snapshot's files ($new_files)
-- with the previous one's ($old_files) by record_id and the whole row, column
-- by column (no hash: no two different rows can ever compare equal). A
-- disappeared record carries its record_id only. $has_new / $has_old are false
-- when a side has no files (the other side's files are then passed, and read as
-- empty).
-- An incremental run passes only its candidates' rows (the records it decided
-- anew; every other row it kept as it was), narrowed before this query
-- (flows/publish/change_set.py, _candidate_rows).
-- $unknown_files (when $has_unknown): ids of records the previous snapshot held
-- in parts that are lost or damaged; their old row is unknown, so each is
-- 'changed' when still shown and 'disappeared' otherwise, never left out.
WITH new_rows AS (
    SELECT *, n AS row_value
    FROM read_parquet($new_files) AS n
    WHERE $has_new
),
old_rows AS (
    SELECT record_id, o AS row_value, false AS row_unknown
    FROM read_parquet($old_files) AS o
    WHERE $has_old
    UNION ALL
    -- Its old row is unknown: such a record always differs from its new row.
    SELECT record_id, NULL AS row_value, true AS row_unknown
    FROM read_parquet($unknown_files)
    WHERE $has_unknown
)
SELECT
    CASE
        WHEN o.record_id IS NULL THEN 'appeared'
        WHEN n.record_id IS NULL THEN 'disappeared'
        ELSE 'changed'
    END AS change,
    coalesce(n.record_id, o.record_id) AS record_id,
    n.* EXCLUDE (record_id, row_value)
FROM new_rows AS n
FULL OUTER JOIN old_rows AS o ON n.record_id = o.record_id
WHERE o.record_id IS NULL
   OR n.record_id IS NULL
   OR o.row_unknown
   OR n.row_value IS DISTINCT FROM o.row_value
ORDER BY record_id
