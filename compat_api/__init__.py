"""The Docker Engine REST API over aiohttp: parse, call one backend method, render."""
