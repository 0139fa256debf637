-- Per published run, the records whose visibility or reasons changed against the
-- previous published run (appeared, disappeared, shown, hidden, reason changed).
CREATE TABLE IF NOT EXISTS decision_changes (
    run_id           VARCHAR NOT NULL,
    -- Uncompressed, as in decisions (create_decisions.sql says why).
    record_id        VARCHAR NOT NULL USING COMPRESSION uncompressed,
    source_system    VARCHAR,
    care_unit_hsa_id VARCHAR,
    care_unit_name   VARCHAR,
    info_type        VARCHAR,
    direction        VARCHAR NOT NULL,   -- shown, hidden, reason_changed, new_hidden, new_shown, gone
    before_visible   BOOLEAN,
    before_reason    VARCHAR,
    after_visible    BOOLEAN,
    after_reason     VARCHAR
)
