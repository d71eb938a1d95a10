"""Instrumentation: spans inside the agent process."""
