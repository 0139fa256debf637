-- Keep how the file of a loaded delivery looked when its bytes were hashed (the
-- latest hash wins: a file copied back keeps its digest, not its stamp).
INSERT OR REPLACE INTO delivery_stamps VALUES ($delivery_id, $file_bytes, $file_mtime_ns)
