-- The system, unit and information type of each changed record (temp table
-- `diff_changes`), as of the later of the two runs compared: from the latest
-- `decision_changes` row that carries them (a record that is gone carries none).
SELECT c.record_id, c.source_system, c.care_unit_hsa_id, c.care_unit_name, c.info_type
FROM decision_changes AS c
JOIN runs AS r USING (run_id)
WHERE r.run_seq <= $dims_seq
  AND c.direction <> 'gone'
  AND c.record_id IN (SELECT record_id FROM diff_changes)
QUALIFY row_number() OVER (PARTITION BY c.record_id ORDER BY r.run_seq DESC) = 1
