-- Records whose analysts' patient_key is not the one the pseudonym key gives.
SELECT count(*)
FROM a.record_visibility AS analysts
JOIN expected_record_visibility AS expected USING (record_id)
WHERE analysts.patient_key IS DISTINCT FROM expected.patient_key
