-- The partitions the dirty records (ids in the Parquet file $path) were decided in before.
SELECT DISTINCT partition_key
FROM decisions
WHERE record_id IN (SELECT record_id FROM read_parquet($path))
ORDER BY partition_key
