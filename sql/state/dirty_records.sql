-- Records whose decision may differ from the previous published run
-- ($previous_run, for $previous_as_of) when the rules are unchanged: those in a
-- delivery this run sees that the previous run did not (a new night, or a late
-- or corrected delivery for an older date), and every record of a patient whose
-- blocks changed or whose block starts or ends between the two business dates.
-- Every other record decides exactly as before and is kept as it is.
WITH new_deliveries AS (
    SELECT delivery_id
    FROM deliveries
    WHERE status = 'loaded' AND business_date <= $as_of
      AND delivery_id NOT IN (
          SELECT delivery_id FROM run_deliveries WHERE run_id = $previous_run
      )
),
blocked_patients AS (
    SELECT patient_id FROM block_versions
    WHERE delivery_id IN (SELECT delivery_id FROM new_deliveries)
    UNION
    SELECT patient_id FROM quarantine
    WHERE delivery_id IN (SELECT delivery_id FROM new_deliveries)
      AND system = 'blocks' AND patient_id IS NOT NULL
    UNION
    -- A block starts holding on valid_from and stops the day after valid_to.
    SELECT patient_id FROM block_versions
    WHERE (valid_from > $previous_as_of AND valid_from <= $as_of)
       OR (valid_to >= $previous_as_of AND valid_to < $as_of)
),
dirty AS (
    SELECT record_id FROM record_versions
    WHERE delivery_id IN (SELECT delivery_id FROM new_deliveries)
    UNION
    SELECT record_id FROM quarantine
    WHERE delivery_id IN (SELECT delivery_id FROM new_deliveries)
      AND record_id IS NOT NULL AND system <> 'blocks'
    UNION
    SELECT record_id FROM decisions
    WHERE patient_id IN (SELECT patient_id FROM blocked_patients)
)
SELECT record_id FROM dirty ORDER BY record_id
