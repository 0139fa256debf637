-- The run's place in the decision history's order, on its record.
UPDATE runs SET run_seq = $run_seq WHERE run_id = $run_id
