"""Span exporters for the embedded (serverless) default.

Traces are written as OTLP/JSON lines so that files produced here and files produced by an
OpenTelemetry Collector ``file`` exporter can be read by the same code. Submodules are imported
on demand; this package deliberately re-exports nothing so importing it stays cheap.
"""
