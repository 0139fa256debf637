-- The runs recorded as published to the feed folder $feed, with their snapshots.
SELECT run_id, snapshot
FROM runs
WHERE status = 'published' AND feed = $feed
