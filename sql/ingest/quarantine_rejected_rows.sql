-- Quarantine the rows that broke the file's structure ($path); a journal row's id
-- is prefixed with its system ($prefix_ids), as the adapters do.
INSERT INTO quarantine
SELECT $delivery_id, $system, source_row,
       CASE WHEN $prefix_ids THEN $system || ':' || record_key ELSE record_key END,
       record_version, NULL, error, raw_text
FROM read_parquet($path)
