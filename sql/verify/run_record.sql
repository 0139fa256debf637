-- What the warehouse recorded of the live snapshot's run ($run).
SELECT status, CAST(as_of AS VARCHAR), rules_version FROM w.runs WHERE run_id = $run
