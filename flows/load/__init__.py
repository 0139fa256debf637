"""Stage 1, load: delivery folders in the inbox into the warehouse (versions, quarantine)."""
