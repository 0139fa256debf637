-- Every valid version of every citizen block ever loaded.
CREATE TABLE IF NOT EXISTS block_versions (
    block_id         VARCHAR NOT NULL,
    block_version    BIGINT NOT NULL,
    patient_id       VARCHAR NOT NULL,
    scope            VARCHAR NOT NULL,
    care_unit_hsa_id VARCHAR,
    valid_from       DATE NOT NULL,
    valid_to         DATE,
    revoked          BOOLEAN NOT NULL,
    delivery_id      VARCHAR NOT NULL,
    source_row       BIGINT NOT NULL,
    documented_from  DATE,  -- the documentation period the block covers; null: open
    documented_to    DATE
)
