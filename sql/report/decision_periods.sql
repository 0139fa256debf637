-- `jvn explain`: a record's decision history, one row per period across
-- published runs, with the runs that opened and closed each (an open period
-- has no to_run).
SELECT
    h.visible, h.reason, h.reasons, h.rules_version, h.record_version,
    h.from_run, f.as_of AS from_as_of, h.to_run, t.as_of AS to_as_of
FROM decision_history AS h
JOIN runs AS f ON f.run_id = h.from_run
LEFT JOIN runs AS t ON t.run_id = h.to_run
WHERE h.record_id = $record_id
ORDER BY h.from_seq
