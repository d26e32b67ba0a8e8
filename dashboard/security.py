"""Access control: the start-up token, sessions, CSRF, same-origin checks and headers.

The token (random, created at start) is printed once in the URL and written 0600 to a file.
``POST /api/login`` exchanges it for a session cookie (HttpOnly, SameSite=Strict); the answer
also carries the session's CSRF token, which every state-changing request sends back in the
``X-CSRF-Token`` header (websockets that act, in the ``csrf`` query parameter). No CORS headers
are ever sent, cross-origin requests that change state are refused, and every response carries a
strict Content-Security-Policy.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

COOKIE = "pydd_session"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_FILE = "dashboard.token"
SAFE_METHODS = frozenset({"GET", "HEAD"})

# No inline script, no eval, nothing from elsewhere. Styles allow 'unsafe-inline' only because
# xterm.js sizes its rows with a generated <style> element.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def write_token(directory: Path, token: str) -> Path:
    """Write the token to ``directory/dashboard.token``, readable by its owner only."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode())
    finally:
        os.close(fd)
    return path


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Sessions:
    """Logged-in browser sessions: session id -> CSRF token (in memory, gone at restart)."""

    token: str
    _csrf: dict[str, str] = field(default_factory=dict)

    def login(self, offered: str) -> tuple[str, str] | None:
        """A new (session id, csrf token) when ``offered`` is the access token, else None."""
        if not hmac.compare_digest(offered.encode(), self.token.encode()):
            return None
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self._csrf[sid] = csrf
        return sid, csrf

    def csrf_for(self, sid: str | None) -> str | None:
        return self._csrf.get(sid) if sid else None

    def logout(self, sid: str | None) -> None:
        if sid:
            self._csrf.pop(sid, None)


def _same_origin(request: web.Request) -> bool:
    """True when the request names no Origin, or our own (scheme://Host)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin == f"{request.scheme}://{request.host}"


def api_error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def make_security_middleware(sessions: Sessions, loopback_only: bool) -> Middleware:
    """Checks every request, then adds the security headers to every answer."""

    @web.middleware
    async def security(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await _check(request, handler)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    async def _check(request: web.Request, handler: Handler) -> web.StreamResponse:
        # DNS rebinding: a loopback listener answers only to loopback host names
        if loopback_only and not is_loopback(request.url.host or ""):
            return api_error(421, "this dashboard answers only on a loopback address")
        is_ws = request.headers.get("Upgrade", "").lower() == "websocket"
        changes_state = request.method not in SAFE_METHODS or is_ws
        if changes_state and not _same_origin(request):
            return api_error(403, "cross-origin request refused")
        if not request.path.startswith("/api/") or request.path == "/api/login":
            return await handler(request)
        sid = request.cookies.get(COOKIE)
        csrf = sessions.csrf_for(sid)
        if csrf is None:
            return api_error(401, "authentication required: open the URL with the token pydockerd-dashboard printed")
        request["session"] = sid
        if request.method not in SAFE_METHODS:
            offered = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(offered.encode(), csrf.encode()):
                return api_error(403, "missing or wrong CSRF token")
        return await handler(request)

    return security


def set_session_cookie(response: web.Response, sid: str, secure: bool) -> None:
    response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", secure=secure, path="/")


def check_ws_csrf(request: web.Request, sessions: Sessions) -> bool:
    """Websockets that act (exec) carry the CSRF token as the ``csrf`` query parameter."""
    csrf = sessions.csrf_for(request.cookies.get(COOKIE))
    offered = request.query.get("csrf", "")
    return csrf is not None and hmac.compare_digest(offered.encode(), csrf.encode())
