-- Remove the decisions of the records an incremental run decided anew (ids in $path).
DELETE FROM decisions
WHERE record_id IN (SELECT record_id FROM read_parquet($path))
