-- `jvn explain` of an invalid record: the check its quarantined row failed (the
-- job's own text, which names fields and problems, never values). Of the
-- record's quarantined rows in deliveries loaded for $as_of or earlier, the one
-- that made it invalid: the highest version (one whose version could not be
-- read counts as above the others), on a tie the one loaded last.
SELECT q.error
FROM quarantine AS q
JOIN deliveries AS d USING (delivery_id)
WHERE q.record_id = $record_id
  AND q.system <> 'blocks'
  AND d.status = 'loaded'
  AND d.business_date <= $as_of
ORDER BY q.record_version DESC NULLS FIRST, d.load_seq DESC, q.source_row DESC
LIMIT 1
