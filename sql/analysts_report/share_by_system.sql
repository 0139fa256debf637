-- Visible share per system, all documentation dates.
SELECT source_system, records, visible, round(visible_pct, 1) AS visible_pct
FROM visibility_by_system
ORDER BY source_system
