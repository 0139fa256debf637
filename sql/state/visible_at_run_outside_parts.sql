-- Records the decision history shows as visible at the run with sequence number $seq,
-- less those in the feed parts $intact (the ids an unavailable part held).
SELECT DISTINCT record_id
FROM decision_history
WHERE visible AND from_seq <= $seq AND (to_seq IS NULL OR to_seq > $seq)
  AND record_id NOT IN (SELECT record_id FROM read_parquet($intact))
ORDER BY record_id
