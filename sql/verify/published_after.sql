-- Runs that published after the live snapshot's run started ($t).
SELECT count(*) FROM w.runs WHERE status = 'published' AND started_at > $t
