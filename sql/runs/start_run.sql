-- A run starts: recorded as running, so that the next run closes it if this one is killed.
INSERT INTO runs (run_id, as_of, rules_version, rules_sha256, started_at, status, feed)
VALUES ($run_id, $as_of, $rules_version, $sha, $now, 'running', $feed)
