-- A warehouse made before blocks could be limited to a documentation period
-- (sources.md: optional columns documented_from, documented_to) gains the two
-- columns, empty for every block loaded so far: they meant what they always did.
ALTER TABLE block_versions ADD COLUMN IF NOT EXISTS documented_from DATE;
ALTER TABLE block_versions ADD COLUMN IF NOT EXISTS documented_to DATE;
