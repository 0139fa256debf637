-- Units caught as exempt by name only: their HSA-ids belong in the rule file.
SELECT care_unit_hsa_id, any_value(care_unit_name ORDER BY care_unit_name) AS care_unit_name,
       count(*) AS records
FROM decisions
WHERE exempt_unit_by_name_only
GROUP BY care_unit_hsa_id
ORDER BY care_unit_hsa_id
