-- The warehouse's tables under the names the analysts' build queries read
-- (sql/analytics/record_visibility.sql, decision_changes.sql), so the same
-- queries say what the analysts' database should hold.
CREATE OR REPLACE TEMP VIEW decisions AS SELECT * FROM w.decisions;
CREATE OR REPLACE TEMP VIEW decision_changes AS SELECT * FROM w.decision_changes;
CREATE OR REPLACE TEMP VIEW runs AS SELECT * FROM w.runs
