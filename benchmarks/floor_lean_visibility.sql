-- benchmarks/floor.py --lean: the analysts' table (sql/analytics/record_visibility.sql)
-- with only the columns interfaces.md names and a 64-bit keyed pseudonym, instead
-- of the job's 32 hexadecimal characters, from the attached warehouse.
CREATE TABLE record_visibility AS
WITH pseudonyms AS (
    SELECT
        patient_id,
        CAST('0x' || substr(sha256($key || ':' || sha256($key || ':' || patient_id)), 1, 16)
             AS UBIGINT) AS patient_key
    FROM (SELECT DISTINCT patient_id FROM source.decisions WHERE patient_id IS NOT NULL)
)
SELECT record_id, source_system, care_unit_hsa_id, care_unit_name, info_type,
       documented_date, visible, reason, reasons, rules_version, run_id,
       pseudonym.patient_key
FROM source.decisions
LEFT JOIN pseudonyms AS pseudonym USING (patient_id)
