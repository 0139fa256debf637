-- The deliveries this run sees ($run_id on $as_of), for the next run's incremental plan.
INSERT INTO run_deliveries
SELECT $run_id, delivery_id
FROM deliveries
WHERE status = 'loaded' AND business_date <= $as_of
