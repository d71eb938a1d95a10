"""The typed span model: every source (SDK spans, OTLP/JSON, OTLP/protobuf) decodes into it,
and it encodes back."""
