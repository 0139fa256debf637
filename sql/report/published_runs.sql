-- Every published run, in publishing order, with the snapshot and feed it
-- published and the feed's patient partitions.
SELECT run_id, run_seq, as_of, rules_version, snapshot, feed, partitions
FROM runs
WHERE status = 'published' AND run_seq IS NOT NULL
ORDER BY run_seq
