-- Quarantined rows per night, system and error.
SELECT business_date, system, error, rows
FROM quarantine_summary
ORDER BY business_date, system, error
