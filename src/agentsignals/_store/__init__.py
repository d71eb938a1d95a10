"""Trace and feature storage in ClickHouse (a server over HTTP, or chDB in process)."""
