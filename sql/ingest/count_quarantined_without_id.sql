-- Quarantined rows of the delivery whose record id could not be read.
SELECT count(*)
FROM quarantine
WHERE delivery_id = $delivery_id AND record_id IS NULL
