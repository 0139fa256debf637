-- Record a rejected delivery once (the id holds the bytes and the error); the id if new.
INSERT INTO deliveries VALUES (
    $delivery_id, $system, $business_date, $folder, $file, $sha256, $rows, 'rejected', $error,
    NULL, 0, 0, $run_id, $now
)
ON CONFLICT DO NOTHING
RETURNING delivery_id
