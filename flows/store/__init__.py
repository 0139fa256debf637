"""Stage 2, store: the warehouse's state on a date, its decisions, runs and history."""
