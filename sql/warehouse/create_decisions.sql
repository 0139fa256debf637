-- The latest run's decision for every record (replaced by each run).
CREATE TABLE IF NOT EXISTS decisions (
    record_id                VARCHAR NOT NULL,
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
