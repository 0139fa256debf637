-- Give the warehouse its id ($id), once.
INSERT INTO warehouse_identity VALUES ($id, now())
