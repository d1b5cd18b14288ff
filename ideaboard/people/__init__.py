"""Members' public profiles."""
