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
CREATE OR REPLACE VIEW analytics.visibility_by_month AS
SELECT date_trunc('month', documented_date)::DATE AS month, source_system,
       count(*) AS records, count(*) FILTER (WHERE visible) AS visible,
       count(*) FILTER (WHERE visible) / count(*) AS visible_share
FROM analytics.record_visibility GROUP BY ALL ORDER BY ALL
