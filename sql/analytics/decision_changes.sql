-- What each published run changed, without personal data.
CREATE TABLE analytics.decision_changes AS
SELECT c.run_id, r.as_of, r.rules_version, c.record_id, c.source_system, c.care_unit_hsa_id,
       c.care_unit_name, c.info_type, c.direction, c.before_visible, c.before_reason,
       c.after_visible, c.after_reason
FROM decision_changes AS c
JOIN runs AS r USING (run_id)
ORDER BY r.run_seq, c.record_id
