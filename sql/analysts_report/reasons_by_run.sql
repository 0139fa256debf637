-- Records per reason at every published run.
SELECT run_seq, as_of, rules_version, reason, records
FROM reasons_by_run
ORDER BY run_seq, reason
