-- The stamps of the files of the deliveries loaded from $system, with their folder
-- and digest: a folder still holding the same file is not hashed again.
SELECT d.folder, d.sha256, s.file_bytes, s.file_mtime_ns
FROM deliveries AS d
JOIN delivery_stamps AS s USING (delivery_id)
WHERE d.system = $system AND d.status = 'loaded' AND d.sha256 IS NOT NULL
ORDER BY d.folder, d.sha256
