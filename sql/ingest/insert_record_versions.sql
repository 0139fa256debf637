-- Store a journal delivery's valid rows (the adapter's Parquet parts $path).
INSERT INTO record_versions BY NAME
SELECT * EXCLUDE (error) FROM read_parquet($path) WHERE error IS NULL
