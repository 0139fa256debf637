-- Without the pseudonym key, what can still be checked: one patient, one key,
-- and one key, one patient; a key exactly where the record has a patient.
-- Counts patients with several keys, keys shared by several patients, and
-- records with a key but no patient or a patient but no key.
WITH pairs AS (
    SELECT DISTINCT decided.patient_id, analysts.patient_key
    FROM a.record_visibility AS analysts
    JOIN w.decisions AS decided USING (record_id)
),
patients_with_several_keys AS (
    SELECT patient_id FROM pairs WHERE patient_id IS NOT NULL
    GROUP BY patient_id HAVING count(*) > 1
),
keys_of_several_patients AS (
    SELECT patient_key FROM pairs WHERE patient_key IS NOT NULL
    GROUP BY patient_key HAVING count(patient_id) > 1
)
SELECT
    (SELECT count(*) FROM patients_with_several_keys)
    + (SELECT count(*) FROM keys_of_several_patients)
    + (SELECT count(*) FROM pairs WHERE (patient_id IS NULL) <> (patient_key IS NULL))
