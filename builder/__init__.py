"""The classic Dockerfile builder behind ``POST /build``. Depends on runtime only."""
