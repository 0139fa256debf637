-- How many record ids are decided more than once (must be none).
SELECT count(*) - count(DISTINCT record_id) FROM decisions
