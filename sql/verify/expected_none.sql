-- No record is visible by the rules: `expected` with the feed's columns, no rows.
CREATE OR REPLACE TEMP TABLE expected AS SELECT * FROM live_feed WHERE false
