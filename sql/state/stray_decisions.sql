-- Decisions of a run that never published (it replaced them, then failed or died).
SELECT count(*)
FROM decisions
WHERE run_id NOT IN (SELECT run_id FROM runs WHERE status = 'published')
