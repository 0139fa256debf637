-- The written change set's rows ($path) counted by kind of change.
SELECT change, count(*) FROM read_parquet($path) GROUP BY change
