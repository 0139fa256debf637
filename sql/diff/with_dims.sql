-- The changed records (temp table `diff_changes`) with their system, unit and
-- information type (temp table `diff_dims`): what `jvn diff` and `jvn whatif`
-- print and export. No personnummer, no journal text.
SELECT
    c.record_id,
    coalesce(d.source_system, split_part(c.record_id, ':', 1)) AS source_system,
    d.care_unit_hsa_id,
    d.care_unit_name,
    d.info_type,
    c.direction,
    c.before_visible, c.before_reason, c.before_reasons,
    c.after_visible, c.after_reason, c.after_reasons
FROM diff_changes AS c
LEFT JOIN diff_dims AS d USING (record_id)
ORDER BY c.record_id
