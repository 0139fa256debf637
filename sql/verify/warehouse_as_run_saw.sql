-- The warehouse's tables under the names the state queries read, with
-- `deliveries` narrowed to what the live run saw (run_scope).
CREATE OR REPLACE TEMP VIEW deliveries AS
SELECT * FROM w.deliveries WHERE delivery_id IN (SELECT delivery_id FROM run_scope);
-- With its row ids: state/current_records finds each winning version by its row id.
CREATE OR REPLACE TEMP VIEW record_versions AS SELECT *, rowid AS rowid FROM w.record_versions;
CREATE OR REPLACE TEMP VIEW block_versions AS SELECT * FROM w.block_versions;
CREATE OR REPLACE TEMP VIEW quarantine AS SELECT * FROM w.quarantine;
CREATE OR REPLACE TEMP VIEW decisions AS SELECT * FROM w.decisions
