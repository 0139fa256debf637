-- One row per record as of the latest run, with a keyed pseudonym instead of
-- the personnummer: HMAC-shaped double hash, so the key is needed to link it.
CREATE TABLE analytics.record_visibility AS
WITH decided AS (
    SELECT * FROM decisions
)
SELECT
    record_id,
    source_system,
    care_unit_hsa_id,
    care_unit_name,
    info_type,
    documented_date,
    visible,
    reason,
    reasons,
    rules_version,
    run_id,
    CASE WHEN patient_id IS NULL THEN NULL
         ELSE substr(sha256($key || ':' || sha256($key || ':' || patient_id)), 1, 32)
    END AS patient_key
FROM decided
ORDER BY record_id
