-- Records per reason over all partitions, reused ones included.
SELECT reason, count(*)
FROM decisions
GROUP BY reason
ORDER BY reason
