"""Docker JSON shapes as TypedDicts (names exactly as the v1.50 spec)."""
