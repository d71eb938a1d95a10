"""Verification: outcomes from verifiers, gold patches and the agent's own test runs."""
