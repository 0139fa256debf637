-- How many of the record ids this run decided ($files, its decision files) the
-- table holds more than once. For an incremental run, whose other rows were
-- each held once before (checked by the run that stored them): a record
-- decided twice, or decided anew without its old decision removed, shows here,
-- without counting every id of the table.
WITH decided AS (
    SELECT DISTINCT record_id FROM read_parquet($files)
)
SELECT count(*) - count(DISTINCT record_id)
FROM decisions
WHERE record_id IN (SELECT record_id FROM decided)
