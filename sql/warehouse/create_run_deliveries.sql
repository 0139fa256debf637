-- Which loaded deliveries each run's decisions were based on.
CREATE TABLE IF NOT EXISTS run_deliveries (
    run_id      VARCHAR NOT NULL,
    delivery_id VARCHAR NOT NULL
)
