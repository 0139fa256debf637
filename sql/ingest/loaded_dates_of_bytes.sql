-- The business dates these bytes ($sha256 from $system) were loaded for.
SELECT business_date
FROM deliveries
WHERE system = $system AND sha256 = $sha256 AND status = 'loaded'
