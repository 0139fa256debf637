-- The warehouse's own id (made once, never changed).
SELECT warehouse_id FROM warehouse_identity LIMIT 1
