"""Pure readings of what a tool call did, shared by live tools, importers and verification."""
