"""Facts about the host and the engine, for /info and /version."""
