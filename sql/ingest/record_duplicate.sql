-- Record bytes already loaded for another date as a duplicate, once; the id if new.
INSERT INTO deliveries VALUES (
    $delivery_id, $system, $business_date, $folder, $file, $sha256, NULL, 'duplicate',
    'identical to a delivery already loaded for another date', NULL, 0, 0, $run_id, $now
)
ON CONFLICT DO NOTHING
RETURNING delivery_id
