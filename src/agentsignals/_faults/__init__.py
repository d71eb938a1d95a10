"""Fault injection for recovery evals (public as `agentsignals.faults`)."""
