"""Backtests on the same strategy contract as live (issue 16). Runs in one process and imports no
Ray, no actor and no supervisor (an import contract keeps it so)."""
