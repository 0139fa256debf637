-- The latest run's decision for every record (replaced by each run).
CREATE TABLE IF NOT EXISTS decisions (
    -- Stored uncompressed: every run finds its records among all of them by id, and
    -- DuckDB reads these unique ids 5 x faster uncompressed (10 M ids: 0.05 s against
    -- 0.28 s; a semi-join on them 0.14 s against 0.35 s) and writes them 3 x faster,
    -- for 2.5 x the disk (217 MB against 85 MB; docs/operations.md).
    record_id                VARCHAR NOT NULL USING COMPRESSION uncompressed,
    source_system            VARCHAR NOT NULL,
    record_version           BIGINT,
    patient_id               VARCHAR,
    care_unit_hsa_id         VARCHAR,
    care_unit_name           VARCHAR,
    info_type                VARCHAR,
    source_code              VARCHAR,
    documented_date          DATE,
    visible                  BOOLEAN NOT NULL,
    reason                   VARCHAR NOT NULL,
    reasons                  VARCHAR[] NOT NULL,
    exempt_unit_by_name_only BOOLEAN,
    rules_version            VARCHAR NOT NULL,
    run_id                   VARCHAR NOT NULL,
    partition_key            INTEGER NOT NULL
)
