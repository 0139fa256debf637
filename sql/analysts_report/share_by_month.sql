-- Visible share per system by documentation month (records without a date left out).
SELECT month, source_system, records, visible,
       round(100.0 * visible / records, 1) AS visible_pct
FROM visibility_by_month
WHERE month IS NOT NULL
ORDER BY month, source_system
