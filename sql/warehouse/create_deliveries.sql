-- Every delivery folder the job has judged: loaded, rejected (with why) or duplicate;
-- and each one it left for later (dated after the run's date), which is not judged yet.
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id      VARCHAR PRIMARY KEY,  -- <system>/<business date>/<sha256 prefix>[!<rejection>], or <system>/<date>!later
    system           VARCHAR NOT NULL,
    business_date    DATE,
    folder           VARCHAR NOT NULL,      -- relative to the inbox
    file             VARCHAR,
    sha256           VARCHAR,
    rows             BIGINT,                -- data rows, as counted by the job
    status           VARCHAR NOT NULL CHECK (status IN ('loaded', 'rejected', 'duplicate', 'later')),
    error            VARCHAR,
    load_seq         BIGINT,                -- order of loading; null unless loaded
    records_loaded   BIGINT,
    rows_quarantined BIGINT,
    run_id           VARCHAR NOT NULL,      -- the run that first judged it
    judged_at        TIMESTAMPTZ NOT NULL
)
