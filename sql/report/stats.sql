-- `jvn stats`: one run's decisions (temp table `stated_decisions`) counted by
-- one dimension ($by: system, reason, type or unit), then a total row. A record
-- whose fields are withheld (invalid_record) has no type and no unit: its row is
-- labelled "(unreadable)". A unit is named by the first of its names in sort
-- order (a unit renamed between deliveries has more than one).
WITH keyed AS (
    SELECT
        CASE $by
            WHEN 'system' THEN source_system
            WHEN 'reason' THEN reason
            WHEN 'type' THEN info_type
            WHEN 'unit' THEN care_unit_hsa_id
        END AS key,
        care_unit_name,
        visible
    FROM stated_decisions
)
SELECT
    CASE WHEN grouping(key) = 1 THEN 'total' ELSE coalesce(key, '(unreadable)') END AS label,
    CASE WHEN grouping(key) = 0 THEN min(care_unit_name) END AS unit_name,
    count(*) AS records,
    count(*) FILTER (WHERE visible) AS visible,
    round(100.0 * count(*) FILTER (WHERE visible) / count(*), 1) AS visible_pct
FROM keyed
GROUP BY GROUPING SETS ((key), ())
ORDER BY grouping(key), key NULLS LAST
