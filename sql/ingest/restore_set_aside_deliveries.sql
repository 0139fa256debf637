-- Every row of the set-aside `deliveries` into the table made again, then the old one goes.
INSERT INTO deliveries SELECT * FROM deliveries_before_later;
DROP TABLE deliveries_before_later
