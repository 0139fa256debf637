-- Information-type codes the contract does not list (read as `other`): someone should look.
-- Only what looks like a code is shown: a shifted column could put journal text here.
WITH unknown AS (
    SELECT source_system,
           CASE WHEN regexp_full_match(source_code, '[A-Za-z0-9_-]{1,40}') THEN source_code
                ELSE '(not a code: ' || length(source_code) || ' characters)' END AS source_code
    FROM decisions
    WHERE info_type = 'other'
)
SELECT source_system, source_code, count(*) AS records
FROM unknown
GROUP BY source_system, source_code
ORDER BY source_system, source_code
