"""agentsignals."""
