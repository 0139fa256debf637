-- When the live snapshot's run ($run) started.
SELECT started_at FROM w.runs WHERE run_id = $run
