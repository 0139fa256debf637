-- The state of every record as known on the run's business date ($as_of):
-- its highest version among loaded deliveries dated <= $as_of (on a tie, the
-- one loaded first). A quarantined row whose record id was readable competes
-- as an invalid version; when it wins, the record is invalid and every field
-- but its id is withheld. An unreadable version counts as one above every
-- valid version loaded with or before it, so a bad update never leaves an
-- older version on show.
-- With $only_records set (a nightly run redoes only the records new deliveries
-- or block dates touched), only those records are computed.
WITH in_scope AS (
    SELECT delivery_id, load_seq
    FROM deliveries
    WHERE status = 'loaded' AND business_date <= $as_of
),
wanted_records AS (
    SELECT DISTINCT unnest(CAST($only_records AS VARCHAR[])) AS record_id
),
valid_versions AS (
    SELECT v.record_id, v.record_version, d.load_seq, v.source_row, v.rowid AS version_row
    FROM record_versions AS v
    JOIN in_scope AS d USING (delivery_id)
    WHERE CAST($only_records AS VARCHAR[]) IS NULL OR v.record_id IN (SELECT record_id FROM wanted_records)
),
invalid_rows AS (
    SELECT q.record_id, q.record_version, d.load_seq, q.source_row
    FROM quarantine AS q
    JOIN in_scope AS d USING (delivery_id)
    WHERE q.record_id IS NOT NULL AND q.system <> 'blocks'
      AND (CAST($only_records AS VARCHAR[]) IS NULL OR q.record_id IN (SELECT record_id FROM wanted_records))
),
invalid_versions AS (
    SELECT
        i.record_id,
        coalesce(
            i.record_version,
            (SELECT max(v.record_version) FROM valid_versions AS v
             WHERE v.record_id = i.record_id AND v.load_seq <= i.load_seq) + 1,
            1
        ) AS record_version,
        i.load_seq,
        i.source_row,
        NULL::BIGINT AS version_row
    FROM invalid_rows AS i
),
candidates AS (
    SELECT record_id, record_version, load_seq, source_row, version_row, false AS invalid FROM valid_versions
    UNION ALL
    SELECT record_id, record_version, load_seq, source_row, version_row, true AS invalid FROM invalid_versions
),
winners AS (
    SELECT *
    FROM candidates
    QUALIFY row_number() OVER (
        PARTITION BY record_id ORDER BY record_version DESC, load_seq ASC, source_row ASC, invalid DESC
    ) = 1
),
current_state AS (
    SELECT
        w.record_id,
        split_part(w.record_id, ':', 1) AS source_system,
        w.record_version,
        w.invalid,
        v.patient_id, v.birth_date, v.care_unit_hsa_id, v.care_unit_name, v.specialty,
        v.source_code, v.info_type, v.keyword, v.documented_at, v.documented_date,
        v.signed, v.retracted, v.title, v.content, v.delivery_id, v.source_row
    FROM winners AS w
    -- The winning version's row by its row id, not by its four key columns: one
    -- integer to hash instead of an id, a version, a delivery and a row (this join
    -- in the 10 M-record export: 6.4 s -> 2.7 s). A row id holds within one statement.
    LEFT JOIN record_versions AS v ON v.rowid = w.version_row
)
SELECT
    *,
    -- Patients spread over partitions by digits of the personnummer that do not
    -- depend on birth date: stable on every machine, whole patients per partition.
    CAST(coalesce(TRY_CAST(substr(patient_id, 9, 3) AS INTEGER), 0) % $partitions AS INTEGER)
        AS partition_key
FROM current_state
