-- Move `deliveries` aside, so that it can be made again with today's definition.
ALTER TABLE deliveries RENAME TO deliveries_before_later
