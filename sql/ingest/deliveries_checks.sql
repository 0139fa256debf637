-- The CHECK constraints of `deliveries` (does it allow the `later` status yet?).
SELECT expression
FROM duckdb_constraints()
WHERE table_name = 'deliveries' AND constraint_type = 'CHECK'
