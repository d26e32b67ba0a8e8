"""Wire <-> runtime domain conversions; per-API-version quirks live here."""
