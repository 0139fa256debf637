-- Record a delivery as loaded, in the order it was loaded (load_seq).
INSERT INTO deliveries VALUES (
    $delivery_id, $system, $business_date, $folder, $file, $sha256, $rows, 'loaded', NULL,
    nextval('load_seq'), $loaded, $quarantined, $run_id, $now
)
