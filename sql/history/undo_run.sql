-- Take back what a run recorded in the decision history when its feed never
-- went live: its periods go, the periods it closed open again.
DELETE FROM decision_history WHERE from_run = $run_id;
UPDATE decision_history SET to_run = NULL, to_seq = NULL WHERE to_run = $run_id;
DELETE FROM decision_changes WHERE run_id = $run_id;
UPDATE runs SET run_seq = NULL WHERE run_id = $run_id
