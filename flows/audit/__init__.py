"""On top of the flow: what runs did and would do (diff, whatif, verify, explain, stats)."""
