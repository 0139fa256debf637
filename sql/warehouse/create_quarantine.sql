-- Rows that could not be read into a valid record or block, with their raw text.
-- record_id / record_version are kept when readable: such a record is hidden as
-- invalid until a valid higher version arrives. A bad block row keeps its
-- readable personnummer so that the block can still hold (fail closed).
CREATE TABLE IF NOT EXISTS quarantine (
    delivery_id    VARCHAR NOT NULL,
    system         VARCHAR NOT NULL,
    source_row     BIGINT NOT NULL,
    record_id      VARCHAR,
    record_version BIGINT,
    patient_id     VARCHAR,          -- readable personnummer of a bad block row only
    error          VARCHAR NOT NULL,
    raw_text       VARCHAR
)
