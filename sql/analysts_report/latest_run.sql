-- The latest published run: what the report describes.
SELECT run_id, as_of, rules_version, records, visible, deliveries_loaded,
       deliveries_rejected, rows_quarantined
FROM runs
WHERE run_seq IS NOT NULL
ORDER BY run_seq DESC
LIMIT 1
