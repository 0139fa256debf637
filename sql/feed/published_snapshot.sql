-- Whether the warehouse recorded $run as having published the snapshot $snapshot.
SELECT count(*)
FROM runs
WHERE run_id = $run AND status = 'published' AND snapshot = $snapshot
