"""Features: derive the feature records from grouped spans."""
