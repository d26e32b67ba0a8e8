"""``POST /build`` (classic builder) and ``POST /build/prune``."""
