-- Feed records against the warehouse's decisions: not decided, decided hidden,
-- another record version, another rules version.
SELECT
    count(*) FILTER (WHERE d.record_id IS NULL),
    count(*) FILTER (WHERE d.record_id IS NOT NULL AND NOT d.visible),
    count(*) FILTER (WHERE d.visible
                     AND d.record_version IS DISTINCT FROM f.record_version),
    count(*) FILTER (WHERE d.visible
                     AND d.rules_version IS DISTINCT FROM f.rules_version)
FROM live_feed AS f
LEFT JOIN w.decisions AS d USING (record_id)
