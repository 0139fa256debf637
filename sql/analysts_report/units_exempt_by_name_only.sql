-- The action list: units hidden by a name pattern only; their HSA-ids belong in the rule file.
SELECT care_unit_hsa_id, care_unit_name, records
FROM units_exempt_by_name_only
ORDER BY care_unit_hsa_id
