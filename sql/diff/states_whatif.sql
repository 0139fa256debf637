-- For `jvn whatif`: the latest published run's decisions (the open history
-- periods, exactly what the next real run compares against) and the decisions
-- made under the proposed rules (Parquet files in a work folder, $decisions).
-- CTE definitions, completed by `diff/compare`.
before_state AS (
    SELECT record_id, visible, reason, reasons
    FROM decision_history
    WHERE to_seq IS NULL
),
after_state AS (
    SELECT record_id, visible, reason, reasons
    FROM read_parquet($decisions)
),
