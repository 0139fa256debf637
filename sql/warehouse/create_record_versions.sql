-- Every valid version of every journal record ever loaded (never updated in place).
CREATE TABLE IF NOT EXISTS record_versions (
    -- Uncompressed, as in decisions (create_decisions.sql says why).
    record_id        VARCHAR NOT NULL USING COMPRESSION uncompressed,
    source_system    VARCHAR NOT NULL,
    record_version   BIGINT NOT NULL,
    patient_id       VARCHAR NOT NULL,
    birth_date       DATE NOT NULL,
    care_unit_hsa_id VARCHAR NOT NULL,
    care_unit_name   VARCHAR NOT NULL,
    specialty        VARCHAR,
    source_code      VARCHAR NOT NULL,
    info_type        VARCHAR NOT NULL,
    keyword          VARCHAR,
    documented_at    TIMESTAMPTZ NOT NULL,
    documented_date  DATE NOT NULL,
    signed           BOOLEAN NOT NULL,
    retracted        BOOLEAN NOT NULL,
    title            VARCHAR,
    content          VARCHAR,
    delivery_id      VARCHAR NOT NULL,
    source_row       BIGINT NOT NULL
)
