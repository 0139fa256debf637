-- The data file of each loaded delivery as the file system described it when its
-- bytes were hashed (size, modification time). Only a shortcut for later runs,
-- which find the old deliveries still in the inbox: a folder whose file has the
-- same size and time, and whose control file names the same digest, is taken as
-- loaded without reading its bytes again. Anything else is hashed as before.
CREATE TABLE IF NOT EXISTS delivery_stamps (
    delivery_id   VARCHAR PRIMARY KEY,
    file_bytes    BIGINT NOT NULL,
    file_mtime_ns BIGINT NOT NULL
)
