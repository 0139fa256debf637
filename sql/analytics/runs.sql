SELECT run_id, run_seq, as_of, rules_version, rules_sha256, started_at, ended_at, status,
       exit_code, snapshot, records, visible, deliveries_loaded, deliveries_rejected,
       rows_quarantined, message
FROM runs
ORDER BY started_at
