"""Dense rewards from attempt records and spans (public as `agentsignals.rewards`)."""
