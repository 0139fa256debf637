-- Patient partitions whose decisions may differ from the previous published run
-- ($previous_run, for $previous_as_of) when the rules are unchanged: those
-- touched by a delivery this run sees that the previous run did not (a new
-- night, or a late or corrected delivery for an older date), and those of
-- patients whose block starts or ends between the two business dates.
-- Every other partition decides exactly as before and is reused.
WITH new_deliveries AS (
    SELECT delivery_id
    FROM deliveries
    WHERE status = 'loaded' AND business_date <= $as_of
      AND delivery_id NOT IN (
          SELECT delivery_id FROM run_deliveries WHERE run_id = $previous_run
      )
),
touched_patients AS (
    SELECT patient_id FROM record_versions
    WHERE delivery_id IN (SELECT delivery_id FROM new_deliveries)
    UNION
    SELECT patient_id FROM block_versions
    WHERE delivery_id IN (SELECT delivery_id FROM new_deliveries)
    UNION
    SELECT patient_id FROM quarantine
    WHERE delivery_id IN (SELECT delivery_id FROM new_deliveries) AND patient_id IS NOT NULL
),
touched_records AS (
    SELECT record_id FROM record_versions
    WHERE delivery_id IN (SELECT delivery_id FROM new_deliveries)
    UNION
    SELECT record_id FROM quarantine
    WHERE delivery_id IN (SELECT delivery_id FROM new_deliveries) AND record_id IS NOT NULL
),
block_boundaries AS (
    -- A block starts holding on valid_from and stops the day after valid_to.
    SELECT patient_id FROM block_versions
    WHERE (valid_from > $previous_as_of AND valid_from <= $as_of)
       OR (valid_to >= $previous_as_of AND valid_to < $as_of)
),
partitions AS (
    SELECT CAST(coalesce(TRY_CAST(substr(patient_id, 9, 3) AS INTEGER), 0) % $partitions
                AS INTEGER) AS partition_key
    FROM (SELECT patient_id FROM touched_patients UNION SELECT patient_id FROM block_boundaries)
    UNION
    -- A record whose id is touched keeps its old partition dirty too (a corrected
    -- personnummer moves a record; an unreadable row names no patient).
    SELECT partition_key FROM decisions
    WHERE record_id IN (SELECT record_id FROM touched_records)
    UNION
    -- Rows quarantined without a readable patient or record: nothing to locate, so
    -- the invalid-record partition (0) is redone.
    SELECT 0 FROM quarantine
    WHERE delivery_id IN (SELECT delivery_id FROM new_deliveries)
      AND patient_id IS NULL AND record_id IS NOT NULL
)
SELECT DISTINCT partition_key FROM partitions ORDER BY partition_key
