"""What one orchestrated run started, so that a cancelled or crashed run can stop exactly its own jobs."""
