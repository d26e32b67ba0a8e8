"""Exec endpoints: POST /containers/{id}/exec, /exec/{id}/start|resize, GET /exec/{id}/json."""
