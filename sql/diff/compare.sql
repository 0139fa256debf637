-- The records whose visibility or reasons differ between two decision states.
--
-- Not a statement on its own: it follows CTEs `before_state` and `after_state`
-- (record_id, visible, reason, reasons), written by `diff/states_between_runs`
-- or `diff/states_whatif`. The comparison and the directions are exactly those
-- of `history/changes_against_open`, so `jvn diff`, `jvn whatif` and the
-- warehouse's `decision_changes` agree record for record.
compared AS (
    SELECT
        coalesce(a.record_id, b.record_id) AS record_id,
        b.visible AS before_visible, b.reason AS before_reason, b.reasons AS before_reasons,
        a.visible AS after_visible, a.reason AS after_reason, a.reasons AS after_reasons
    FROM after_state AS a
    FULL OUTER JOIN before_state AS b ON a.record_id = b.record_id
)
SELECT
    record_id,
    CASE
        WHEN before_visible IS NULL AND after_visible THEN 'new_shown'
        WHEN before_visible IS NULL THEN 'new_hidden'
        WHEN after_visible IS NULL THEN 'gone'
        WHEN NOT before_visible AND after_visible THEN 'shown'
        WHEN before_visible AND NOT after_visible THEN 'hidden'
        ELSE 'reason_changed'
    END AS direction,
    before_visible, before_reason, before_reasons,
    after_visible, after_reason, after_reasons
FROM compared
WHERE before_visible IS DISTINCT FROM after_visible
   OR before_reasons IS DISTINCT FROM after_reasons
