-- How many of the adapter's rows ($paths) are valid (stored, not quarantined).
SELECT count(*) FROM read_parquet($paths) WHERE error IS NULL
