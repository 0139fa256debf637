-- The latest version of every citizen block known on $as_of (tie: loaded first).
-- An unreadable latest version (quarantined with a readable block id) is kept as
-- invalid, attributed to the patient of its readable personnummer or else of
-- the block's last valid version: the decision treats it as holding (fail closed).
WITH in_scope AS (
    SELECT delivery_id, load_seq
    FROM deliveries
    WHERE status = 'loaded' AND business_date <= $as_of AND system = 'blocks'
),
valid_versions AS (
    SELECT b.*, d.load_seq, false AS invalid
    FROM block_versions AS b
    JOIN in_scope AS d USING (delivery_id)
),
invalid_versions AS (
    SELECT
        q.record_id AS block_id,
        coalesce(
            q.record_version,
            (SELECT max(v.block_version) FROM valid_versions AS v
             WHERE v.block_id = q.record_id AND v.load_seq <= d.load_seq) + 1,
            1
        ) AS block_version,
        d.load_seq,
        q.source_row,
        q.patient_id
    FROM quarantine AS q
    JOIN in_scope AS d USING (delivery_id)
    WHERE q.system = 'blocks' AND q.record_id IS NOT NULL
),
candidates AS (
    SELECT block_id, block_version, load_seq, source_row, invalid, NULL AS hinted_patient
    FROM valid_versions
    UNION ALL
    SELECT block_id, block_version, load_seq, source_row, true, patient_id FROM invalid_versions
),
winners AS (
    SELECT *
    FROM candidates
    QUALIFY row_number() OVER (
        PARTITION BY block_id ORDER BY block_version DESC, load_seq ASC, source_row ASC, invalid DESC
    ) = 1
),
last_valid AS (
    SELECT block_id, patient_id
    FROM valid_versions
    QUALIFY row_number() OVER (PARTITION BY block_id ORDER BY block_version DESC, load_seq ASC) = 1
)
SELECT
    w.block_id,
    w.block_version,
    coalesce(v.patient_id, w.hinted_patient, lv.patient_id) AS patient_id,
    CASE WHEN w.invalid THEN 'ALL' ELSE v.scope END AS scope,
    CASE WHEN w.invalid THEN NULL ELSE v.care_unit_hsa_id END AS care_unit_hsa_id,
    v.valid_from,
    v.valid_to,
    CASE WHEN w.invalid THEN false ELSE v.revoked END AS revoked,
    v.delivery_id,
    w.source_row,
    -- An untrusted block covers every documentation date.
    CASE WHEN w.invalid THEN NULL ELSE v.documented_from END AS documented_from,
    CASE WHEN w.invalid THEN NULL ELSE v.documented_to END AS documented_to,
    w.invalid
FROM winners AS w
LEFT JOIN valid_versions AS v
    ON NOT w.invalid
    AND v.block_id = w.block_id
    AND v.block_version = w.block_version
    AND v.load_seq = w.load_seq
    AND v.source_row = w.source_row
LEFT JOIN last_valid AS lv ON lv.block_id = w.block_id
