-- Deliveries rejected whole, with why.
SELECT business_date, system, coalesce(file, '') AS file, error
FROM deliveries
WHERE status = 'rejected'
ORDER BY business_date, system, file
