-- How many deliveries the live run ($run) recorded as seen.
SELECT count(*) FROM w.run_deliveries WHERE run_id = $run
