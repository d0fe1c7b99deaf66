"""What tradeplane knows of the Ray cluster it runs on: its nodes, where each role may run, and
the run records kept in Ray's key-value store."""
