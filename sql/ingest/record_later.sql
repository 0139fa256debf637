-- Record a delivery dated after the run's date as left for later, once, and only
-- while its folder has not been judged; the id if new.
INSERT INTO deliveries
SELECT $delivery_id, $system, $business_date, $folder, $file, NULL, NULL, 'later',
       'business date after the run''s date: left for a later run',
       NULL, 0, 0, $run_id, $now
WHERE NOT EXISTS (SELECT 1 FROM deliveries WHERE folder = $folder)
ON CONFLICT DO NOTHING
RETURNING delivery_id
