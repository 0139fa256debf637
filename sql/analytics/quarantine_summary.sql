-- Quarantined rows counted, never shown: the raw text stays in the warehouse.
WITH quarantined AS (
    SELECT d.system, d.business_date, q.error
    FROM quarantine AS q
    JOIN deliveries AS d USING (delivery_id)
)
SELECT system, business_date, error, count(*) AS rows
FROM quarantined
GROUP BY system, business_date, error
ORDER BY system, business_date, error
