-- Every run of the nightly job, from start to end (a crashed run stays 'running').
CREATE TABLE IF NOT EXISTS runs (
    run_id              VARCHAR PRIMARY KEY,
    run_seq             BIGINT,              -- order of publishing; null unless published
    as_of               DATE NOT NULL,
    rules_version       VARCHAR NOT NULL,
    rules_sha256        VARCHAR NOT NULL,
    started_at          TIMESTAMPTZ NOT NULL,
    ended_at            TIMESTAMPTZ,
    status              VARCHAR NOT NULL,    -- running, published, failed
    exit_code           INTEGER,
    snapshot            VARCHAR,
    feed                VARCHAR,             -- the feed folder it published to (absolute)
    partitions          INTEGER,             -- patient partitions of its feed
    partitions_decided  INTEGER,             -- how many it decided anew (the rest reused)
    records             BIGINT,
    visible             BIGINT,
    deliveries_loaded   BIGINT,
    deliveries_rejected BIGINT,
    rows_quarantined    BIGINT,
    message             VARCHAR              -- why a run failed; never personal data
)
