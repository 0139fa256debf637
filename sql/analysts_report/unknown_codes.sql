-- Codes the contract does not list, read as `other` (hidden): someone should look.
SELECT source_system, source_code, records
FROM unknown_codes
ORDER BY source_system, source_code
