-- Visible decisions whose record is not in the feed.
SELECT count(*)
FROM w.decisions
WHERE visible
  AND record_id NOT IN (SELECT record_id FROM live_feed WHERE record_id IS NOT NULL)
