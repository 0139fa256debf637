-- Deliveries per night and system: status, rows delivered, records loaded, rows quarantined.
SELECT business_date, system, status, count(*) AS deliveries,
       coalesce(sum(rows), 0) AS rows, coalesce(sum(records_loaded), 0) AS records_loaded,
       coalesce(sum(rows_quarantined), 0) AS rows_quarantined
FROM deliveries
GROUP BY business_date, system, status
ORDER BY business_date, system, status
