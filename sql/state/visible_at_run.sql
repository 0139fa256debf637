-- Records the decision history shows as visible at the run with sequence number $seq.
SELECT DISTINCT record_id
FROM decision_history
WHERE visible AND from_seq <= $seq AND (to_seq IS NULL OR to_seq > $seq)
ORDER BY record_id
