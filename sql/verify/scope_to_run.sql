-- The deliveries the live run ($run) saw, for `deliveries` narrowed to them.
CREATE OR REPLACE TEMP TABLE run_scope AS
SELECT delivery_id FROM w.run_deliveries WHERE run_id = $run
