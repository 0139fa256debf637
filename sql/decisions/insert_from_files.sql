-- Add this run's decisions from its work folder's Parquet files ($files, a glob).
INSERT INTO decisions BY NAME
SELECT * FROM read_parquet($files)
