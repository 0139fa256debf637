-- Each record's decision as of two published runs, from the decision history:
-- the state at run R is the periods with from_seq <= R.run_seq < to_seq (an
-- open period has no to_seq). A run_seq of 0 means "before the first run".
-- CTE definitions, completed by `diff/compare`.
before_state AS (
    SELECT record_id, visible, reason, reasons
    FROM decision_history
    WHERE from_seq <= $from_seq AND (to_seq IS NULL OR to_seq > $from_seq)
),
after_state AS (
    SELECT record_id, visible, reason, reasons
    FROM decision_history
    WHERE from_seq <= $to_seq AND (to_seq IS NULL OR to_seq > $to_seq)
),
