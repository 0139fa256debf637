-- The history sequence number of $run, when it published the snapshot $snapshot.
SELECT run_seq
FROM runs
WHERE run_id = $run AND status = 'published' AND snapshot = $snapshot
