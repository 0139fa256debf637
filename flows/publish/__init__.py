"""Stage 4, publish: the snapshot (parts, change set, manifest), CURRENT, analytics."""
