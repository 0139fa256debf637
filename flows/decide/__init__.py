"""Stage 3, decide: one patient partition decided and validated; where partitions run."""
