-- The next run's place in the decision history's order.
SELECT nextval('run_seq')
