-- The delivery folders ($system/$date) already loaded: on later runs their bytes are only
-- checked against what was loaded, together, not given a task each.
SELECT DISTINCT folder
FROM deliveries
WHERE status = 'loaded'
