-- The benchmark's peer: the region's rules as one hand-written DuckDB query over
-- the inbox, as a competent engineer would write it without this project: no
-- control files, no quarantine, no warehouse, no history, no validation, no
-- analytics. Melior is transcoded to UTF-8 beforehand ($melior_utf8 glob).
-- Writes the visible records to Parquet. Parameters: $as_of, one glob per feed.
COPY (
WITH melior AS (
    SELECT 'melior:' || DokumentID AS record_id, 'melior' AS source_system,
           TRY_CAST(Version AS BIGINT) AS version, replace(Personnummer, '-', '') AS pnr,
           HSAid AS hsa_id, Enhetsnamn AS unit_name, Specialitet AS specialty,
           CASE Informationstyp WHEN 'ANTECKNING' THEN 'note' WHEN 'DIAGNOS' THEN 'diagnosis'
                WHEN 'UPPMARKSAMHETSSIGNAL' THEN 'attention_signal'
                WHEN 'VARDKONTAKT' THEN 'care_contact' ELSE 'other' END AS info_type,
           Sokord AS keyword,
           timezone('UTC', timezone('Europe/Stockholm',
               TRY_STRPTIME(Dokumenttid, '%Y-%m-%d %H:%M'))) AS documented_at,
           Signerad = 'J' AS signed, Status = 'MAKULERAD' AS retracted,
           Rubrik AS title, Text AS content,
           regexp_extract(filename, '(\d{4}-\d{2}-\d{2})', 1)::DATE AS business_date
    FROM read_csv($melior, delim = ';', quote = '"', escape = '"', header = true,
                  all_varchar = true, filename = true, ignore_errors = true)
),
asynja AS (
    SELECT 'asynjavisph:' || id AS record_id, 'asynjavisph' AS source_system,
           TRY_CAST(rev AS BIGINT) AS version, replace(patient.pnr, '-', '') AS pnr,
           unit.hsaId AS hsa_id, unit.name AS unit_name, NULL AS specialty,
           CASE WHEN type IN ('note', 'diagnosis', 'attention_signal', 'care_contact',
                              'lab_result', 'vaccination', 'medication', 'referral')
                THEN type ELSE 'other' END AS info_type,
           keyword, TRY_CAST(documentedAt AS TIMESTAMPTZ) AS documented_at,
           signed, retracted, title, body AS content,
           regexp_extract(filename, '(\d{4}-\d{2}-\d{2})', 1)::DATE AS business_date
    FROM read_json($asynjavisph, format = 'newline_delimited', filename = true,
                   ignore_errors = true,
                   columns = {id: 'VARCHAR', rev: 'VARCHAR', patient: 'STRUCT(pnr VARCHAR)',
                              unit: 'STRUCT(hsaId VARCHAR, name VARCHAR)', type: 'VARCHAR',
                              keyword: 'VARCHAR', documentedAt: 'VARCHAR', signed: 'BOOLEAN',
                              retracted: 'BOOLEAN', title: 'VARCHAR', body: 'VARCHAR'})
),
obstetrix AS (
    SELECT 'obstetrix:' || record_id AS record_id, 'obstetrix' AS source_system,
           TRY_CAST(version AS BIGINT) AS version, replace(personal_number, '-', '') AS pnr,
           unit_hsa_id AS hsa_id, unit_name, NULL AS specialty,
           CASE document_type WHEN 'SAMMANFATTNING' THEN 'journal_summary'
                ELSE 'other' END AS info_type,
           NULL AS keyword,
           timezone('UTC', timezone('Europe/Stockholm',
               TRY_CAST(document_date AS DATE)::TIMESTAMP)) AS documented_at,
           signed = 'true' AS signed, status = 'retracted' AS retracted, title, text AS content,
           regexp_extract(filename, '(\d{4}-\d{2}-\d{2})', 1)::DATE AS business_date
    FROM read_csv($obstetrix, header = true, all_varchar = true, filename = true,
                  ignore_errors = true)
),
journalia AS (
    SELECT 'journalia:' || id AS record_id, 'journalia' AS source_system,
           TRY_CAST(version AS BIGINT) AS version, replace(pnr, '-', '') AS pnr,
           hsa_id, unit_name, NULL AS specialty,
           CASE doc_kind WHEN 'AK-BREV' THEN 'ak_letter' ELSE 'other' END AS info_type,
           NULL AS keyword,
           timezone('UTC', timezone('Europe/Stockholm',
               TRY_STRPTIME(created, '%Y-%m-%d %H:%M:%S'))) AS documented_at,
           signed = '1' AS signed, state = 'M' AS retracted, title, text AS content,
           regexp_extract(filename, '(\d{4}-\d{2}-\d{2})', 1)::DATE AS business_date
    FROM read_csv($journalia, header = true, all_varchar = true, filename = true,
                  ignore_errors = true)
),
t4 AS (
    SELECT 't4:' || journal_id AS record_id, 't4' AS source_system,
           TRY_CAST(rev AS BIGINT) AS version, replace(patient_pnr, '-', '') AS pnr,
           clinic_hsa_id AS hsa_id, clinic_name AS unit_name, NULL AS specialty,
           CASE entry_type WHEN 'ANTECKNING' THEN 'note' WHEN 'BESOK' THEN 'care_contact'
                ELSE 'other' END AS info_type,
           NULL AS keyword, TRY_CAST(entry_datetime AS TIMESTAMPTZ) AS documented_at,
           signed = 'Y' AS signed, cancelled = 'Y' AS retracted,
           heading AS title, entry_text AS content,
           regexp_extract(filename, '(\d{4}-\d{2}-\d{2})', 1)::DATE AS business_date
    FROM read_csv($t4, delim = '|', header = true, all_varchar = true, filename = true,
                  ignore_errors = true)
),
all_versions AS (
    SELECT * FROM melior UNION ALL BY NAME SELECT * FROM asynja
    UNION ALL BY NAME SELECT * FROM obstetrix UNION ALL BY NAME SELECT * FROM journalia
    UNION ALL BY NAME SELECT * FROM t4
),
latest AS (
    SELECT *
    FROM all_versions
    WHERE business_date <= $as_of AND version IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY record_id ORDER BY version DESC, business_date) = 1
),
blocks AS (
    SELECT * FROM read_csv($blocks, header = true, all_varchar = true, ignore_errors = true)
    QUALIFY row_number() OVER (PARTITION BY block_id ORDER BY TRY_CAST(version AS INT) DESC) = 1
),
held AS (
    SELECT replace(pnr, '-', '') AS pnr, scope, hsa_id
    FROM blocks
    WHERE status = 'active' AND valid_from::DATE <= $as_of
      AND (valid_to IS NULL OR valid_to = '' OR valid_to::DATE >= $as_of)
),
enriched AS (
    SELECT l.*,
           timezone('Europe/Stockholm', l.documented_at)::DATE AS documented_date,
           try_strptime(substr(l.pnr, 1, 6) || lpad(CAST(
                   TRY_CAST(substr(l.pnr, 7, 2) AS INT)
                   - CASE WHEN TRY_CAST(substr(l.pnr, 7, 2) AS INT) > 60 THEN 60 ELSE 0 END
               AS VARCHAR), 2, '0'), '%Y%m%d')::DATE AS birth_date,
           lower(strip_accents(l.unit_name)) AS unit_key,
           lower(trim(regexp_replace(strip_accents(coalesce(l.keyword, '')), '\s+', ' ', 'g')))
               AS keyword_key
    FROM latest AS l
),
decided AS (
    SELECT e.*,
        CASE
            WHEN e.retracted THEN 'retracted'
            WHEN NOT ((e.source_system = 'melior' AND e.info_type IN ('note', 'diagnosis', 'attention_signal', 'care_contact'))
                   OR (e.source_system = 'asynjavisph' AND e.info_type IN ('note', 'diagnosis', 'attention_signal', 'care_contact', 'lab_result', 'vaccination'))
                   OR (e.source_system = 'obstetrix' AND e.info_type = 'journal_summary')
                   OR (e.source_system = 'journalia' AND e.info_type = 'ak_letter')
                   OR (e.source_system = 't4' AND e.info_type IN ('note', 'care_contact')))
                THEN 'info_type_not_connected'
            WHEN e.documented_date < CASE e.source_system WHEN 'melior' THEN DATE '2016-06-01'
                    WHEN 'asynjavisph' THEN DATE '2016-11-01' WHEN 'obstetrix' THEN DATE '2019-05-15'
                    WHEN 'journalia' THEN DATE '2019-04-01' ELSE DATE '2020-12-01' END
                THEN 'before_system_start'
            WHEN e.source_system = 'melior' AND e.specialty = 'Psykiatri, vuxen'
                 AND e.documented_date < DATE '2018-09-03' THEN 'before_psychiatry_start'
            WHEN e.source_system = 'melior' AND e.specialty = 'Klinisk genetik'
                 AND e.documented_date < DATE '2019-11-01' THEN 'before_genetics_start'
            WHEN e.source_system IN ('melior', 'asynjavisph')
                 AND date_sub('year', e.birth_date, e.documented_date) < 18
                 AND e.documented_date < DATE '2019-11-01' THEN 'before_children_start'
            WHEN e.hsa_id IN (SELECT hsa_id FROM read_csv($exempt_units, header = true))
                 OR regexp_matches(e.unit_key, '\bbup\b|barn-? ?och ungdomspsykiatri|bedomningsteam forsakringsmedicin|flykting-? ?barnmottagning|kris-? ?och traumaenhet|mottagningen for unga vuxna|modra-? ?barnhalsovardsteam|rattspsykiatri|\bsmc\b|sexualmedicinsk|\bstd\b|\bsti\b|konsmottagning|ungdomsmottagning|\butvag\b')
                THEN 'exempt_unit'
            WHEN e.keyword_key IN ('tidiga hypoteser', 'valdsutsatthet i nara relationer')
                THEN 'exempt_term'
            WHEN EXISTS (SELECT 1 FROM held AS h WHERE h.pnr = e.pnr
                         AND (h.scope = 'ALL' OR h.hsa_id = e.hsa_id)) THEN 'patient_block'
            WHEN NOT e.signed AND $as_of < DATE '2022-03-01'
                 AND $as_of < e.documented_date + INTERVAL 14 DAY THEN 'unsigned_delay'
            ELSE 'shown'
        END AS reason
    FROM enriched AS e
)
SELECT record_id, source_system, version AS record_version, pnr AS patient_id,
       hsa_id AS care_unit_hsa_id, unit_name AS care_unit_name, info_type, documented_at,
       documented_date, signed, title, content
FROM decided
WHERE reason = 'shown'
) TO '__OUT__' (FORMAT parquet, COMPRESSION zstd)
