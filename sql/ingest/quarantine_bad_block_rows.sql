-- Quarantine the block rows the adapter found invalid ($canonical), with the
-- sender's text of each ($texts) and the block id, version and patient when readable.
INSERT INTO quarantine
SELECT $delivery_id, $system, c.source_row, c.block_id, c.block_version,
       c.patient_id, c.error, t.raw_text
FROM read_parquet($canonical) AS c
LEFT JOIN read_parquet($texts) AS t USING (source_row)
WHERE c.error IS NOT NULL
