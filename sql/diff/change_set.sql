-- A feed snapshot's change set: the records that appeared, changed (any column
-- differs: a new version, new content, a new rules version) or disappeared,
-- comparing the new snapshot's files ($new_files) with the previous one's
-- ($old_files) by record_id and a hash of the whole row. A disappeared record
-- carries its record_id only. $has_new / $has_old are false when a side has no
-- files (the other side's files are then passed, and read as empty).
-- $candidates (a list of record ids, or NULL for all): an incremental run kept
-- every other record's row as it was, so only these can differ.
-- $unknown_files (when $has_unknown): ids of records the previous snapshot held
-- in parts that are lost or damaged; their old row is unknown, so each is
-- 'changed' when still shown and 'disappeared' otherwise, never left out.
WITH candidates AS (
    SELECT DISTINCT unnest(CAST($candidates AS VARCHAR[])) AS record_id
),
new_rows AS (
    SELECT *, md5(to_json(n)) AS row_hash
    FROM read_parquet($new_files) AS n
    WHERE $has_new
      AND (CAST($candidates AS VARCHAR[]) IS NULL
           OR record_id IN (SELECT record_id FROM candidates))
),
old_rows AS (
    SELECT record_id, md5(to_json(o)) AS row_hash
    FROM read_parquet($old_files) AS o
    WHERE $has_old
      AND (CAST($candidates AS VARCHAR[]) IS NULL
           OR record_id IN (SELECT record_id FROM candidates))
    UNION ALL
    -- No md5 is 'unknown': such a record always differs from its new row.
    SELECT record_id, 'unknown' AS row_hash
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
    n.* EXCLUDE (record_id, row_hash)
FROM new_rows AS n
FULL OUTER JOIN old_rows AS o ON n.record_id = o.record_id
WHERE n.row_hash IS DISTINCT FROM o.row_hash
ORDER BY record_id
