-- benchmarks/floor.py --lean: the least a decisions table can hold (a record's
-- visibility, its reasons, under which rules, in which run), instead of the
-- job's 16 columns (sql/warehouse/create_decisions.sql), filled from the
-- attached warehouse.
CREATE TABLE decisions (
    record_id     VARCHAR NOT NULL USING COMPRESSION uncompressed,
    visible       BOOLEAN NOT NULL,
    reason        VARCHAR NOT NULL,
    reasons       VARCHAR[] NOT NULL,
    rules_version VARCHAR NOT NULL,
    run_id        VARCHAR NOT NULL
);
INSERT INTO decisions
SELECT record_id, visible, reason, reasons, rules_version, run_id FROM source.decisions
