-- The warehouse's own id, one row, created by its first run and never changed.
-- The feed folder names the warehouse that owns it (`<feed>/OWNER`), so a run
-- with another warehouse cannot publish over it (flows/feed.py claim_feed).
CREATE TABLE IF NOT EXISTS warehouse_identity (
    warehouse_id  VARCHAR NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
)
