"""What every stage needs and no stage owns: errors, config, files, the feed folder, lock."""
