-- A run ends: its status, what it did and its exit code.
UPDATE runs
SET ended_at = $now, status = $status, snapshot = $snapshot,
    records = $records, visible = $visible, deliveries_loaded = $loaded,
    deliveries_rejected = $rejected, rows_quarantined = $quarantined,
    exit_code = $exit_code, message = $message, partitions = $partitions,
    partitions_decided = $partitions_decided
WHERE run_id = $run_id
