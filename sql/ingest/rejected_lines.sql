-- The lines DuckDB's CSV reader rejected (its reject store), one row per line.
SELECT
    line,
    min(error_type) AS error_type,
    first(csv_line) AS raw_text,
    min(line_byte_position) AS byte_position
FROM rejected_lines
GROUP BY line
ORDER BY line
