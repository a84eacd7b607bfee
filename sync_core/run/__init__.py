"""One sync run: the triggers that start it, the run itself, its log lines, its recording, backfills."""
