-- The digests of every delivery loaded from $system: bytes seen before are not parsed again.
SELECT DISTINCT sha256
FROM deliveries
WHERE system = $system AND status = 'loaded' AND sha256 IS NOT NULL
