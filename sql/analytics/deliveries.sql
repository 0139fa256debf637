SELECT system, business_date, file, sha256, rows, status, error,
       records_loaded, rows_quarantined, run_id, judged_at
FROM deliveries
ORDER BY business_date, system, judged_at
