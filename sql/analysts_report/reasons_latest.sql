-- Records per reason in the latest decisions, most first.
SELECT reason, records
FROM visibility_by_reason
ORDER BY records DESC, reason
