"""Collection: decode spans from any source into one typed model."""
