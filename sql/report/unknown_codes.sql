-- Information-type codes the contract does not list (read as `other`): someone should look.
SELECT source_system, source_code, count(*) AS records
FROM decisions
WHERE info_type = 'other'
GROUP BY source_system, source_code
ORDER BY source_system, source_code
