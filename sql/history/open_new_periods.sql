INSERT INTO decision_history
SELECT d.record_id, d.visible, d.reason, d.reasons, d.rules_version, d.record_version,
       $run_id, $run_seq, NULL, NULL, d.partition_key
FROM decisions AS d
WHERE d.record_id IN (
    SELECT record_id FROM decision_changes WHERE run_id = $run_id AND direction <> 'gone'
)
