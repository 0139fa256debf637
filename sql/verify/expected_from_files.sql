-- The visible records the rules give again, from their Parquet files ($files).
CREATE OR REPLACE TEMP TABLE expected AS SELECT * FROM read_parquet($files)
