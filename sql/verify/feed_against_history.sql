-- Feed records against the decision history at the live run ($seq): not decided
-- then, hidden then, and visible then but missing from the feed.
WITH periods AS (
    SELECT record_id, visible FROM w.decision_history
    WHERE from_seq <= $seq AND (to_seq IS NULL OR to_seq > $seq)
)
SELECT
    (SELECT count(*) FROM live_feed AS f
     WHERE NOT EXISTS (SELECT 1 FROM periods AS p WHERE p.record_id = f.record_id)),
    (SELECT count(*) FROM live_feed AS f
     WHERE EXISTS (SELECT 1 FROM periods AS p
                   WHERE p.record_id = f.record_id AND NOT p.visible)),
    (SELECT count(*) FROM periods AS p WHERE p.visible
     AND p.record_id NOT IN (SELECT record_id FROM live_feed
                             WHERE record_id IS NOT NULL))
