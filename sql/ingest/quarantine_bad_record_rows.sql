-- Quarantine the journal rows the adapter found invalid ($canonical), with the
-- sender's text of each ($texts) and the record id and version when readable.
INSERT INTO quarantine
SELECT $delivery_id, $system, c.source_row, c.record_id, c.record_version,
       NULL, c.error, t.raw_text
FROM read_parquet($canonical) AS c
LEFT JOIN read_parquet($texts) AS t USING (source_row)
WHERE c.error IS NOT NULL
