"""The pydockerd web dashboard: an aiohttp app that is a client of the Docker Engine API.

It talks to the engine only over the engine's socket (pydockerd or any dockerd) and imports
nothing from ``compat_api``, ``builder`` or ``runtime`` (an import-linter contract checks it).
"""
