-- Slowly changing history of each record's decision: one row per period in
-- which its visibility and reasons stayed the same, across published runs
-- (run_seq order). An open period has no to_run.
CREATE TABLE IF NOT EXISTS decision_history (
    -- Uncompressed, as in decisions (create_decisions.sql says why).
    record_id        VARCHAR NOT NULL USING COMPRESSION uncompressed,
    visible          BOOLEAN NOT NULL,
    reason           VARCHAR NOT NULL,
    reasons          VARCHAR[] NOT NULL,
    rules_version    VARCHAR NOT NULL,   -- of the run that opened the period
    record_version   BIGINT,             -- the version decided when the period opened
    from_run         VARCHAR NOT NULL,
    from_seq         BIGINT NOT NULL,
    to_run           VARCHAR,
    to_seq           BIGINT,
    partition_key    INTEGER             -- the patient partition when the period opened
)
