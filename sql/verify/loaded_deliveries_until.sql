-- How many loaded deliveries are dated on or before $as_of.
SELECT count(*) FROM w.deliveries WHERE status = 'loaded' AND business_date <= $as_of
