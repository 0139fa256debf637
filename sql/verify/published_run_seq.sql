-- The live snapshot's run's place in the decision history, when it published.
SELECT run_seq FROM w.runs WHERE run_id = $run AND status = 'published'
