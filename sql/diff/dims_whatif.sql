-- The system, unit and information type of each changed record (temp table
-- `diff_changes`) for `jvn whatif`: from the proposed decisions, or, for a
-- record they no longer hold, from the warehouse's latest decisions.
SELECT record_id, source_system, care_unit_hsa_id, care_unit_name, info_type
FROM read_parquet($decisions)
WHERE record_id IN (SELECT record_id FROM diff_changes)
UNION ALL BY NAME
SELECT record_id, source_system, care_unit_hsa_id, care_unit_name, info_type
FROM decisions
WHERE record_id IN (SELECT record_id FROM diff_changes)
  AND record_id NOT IN (SELECT record_id FROM read_parquet($decisions))
