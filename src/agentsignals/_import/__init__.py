"""Importers: existing agent trajectories become the same spans as live runs."""
