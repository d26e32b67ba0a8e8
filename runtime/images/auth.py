"""Registry credentials and the two authentication schemes of the registry API v2.

* :class:`AuthConfig` is Docker's ``AuthConfig``: what clients send in ``X-Registry-Auth``
  (base64url JSON, see :func:`decode_registry_auth`) and in the body of ``POST /auth``.
* :func:`parse_challenges` reads ``WWW-Authenticate`` headers (RFC 7235).
* :class:`Authenticator` answers "which ``Authorization`` header for these scopes?":
  ``Basic`` sends the credentials on every request; ``Bearer`` fetches a token from the
  challenge's ``realm`` (``service`` and ``scope`` parameters, credentials as Basic auth, or
  an OAuth2 refresh token when the client holds an identity token) and caches it per scope
  set until it expires.

Errors carry the texts dockerd shows (``no basic auth credentials``, ``unauthorized: ...``).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.errors import SystemError_

_FIELDS = {
    "username": "username",
    "password": "password",
    "auth": "auth",
    "email": "email",
    "serveraddress": "server_address",
    "identitytoken": "identity_token",
    "registrytoken": "registry_token",
}

# dockerd asks for tokens valid this long at least; shorter answers are raised to it
MIN_TOKEN_LIFETIME = 60


class AuthError(SystemError_):
    """Authentication against a registry failed (dockerd reports these as 500)."""


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Docker's ``AuthConfig`` (all fields optional)."""

    username: str = ""
    password: str = ""
    auth: str = ""  # base64("user:password"), an alternative to username/password
    email: str = ""
    server_address: str = ""
    identity_token: str = ""  # OAuth2 refresh token from an earlier login
    registry_token: str = ""  # a bearer token to use as is

    @classmethod
    def from_json(cls, doc: Any) -> AuthConfig:
        """From a decoded JSON object; keys match case-insensitively, as Go's decoder."""
        if not isinstance(doc, Mapping):
            return cls()
        values: dict[str, str] = {}
        for key, value in doc.items():
            name = _FIELDS.get(str(key).lower())
            if name is not None and isinstance(value, str):
                values[name] = value
        return cls(**values)

    def credentials(self) -> tuple[str, str] | None:
        """``(username, password)``, from the fields or from ``auth``; None when absent."""
        if self.username or self.password:
            return self.username, self.password
        if self.auth:
            try:
                user, sep, password = _b64decode(self.auth).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            if sep:
                return user, password
        return None


def _b64decode(text: str) -> bytes:
    text = text.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError):
        return base64.b64decode(padded, validate=False)


def decode_registry_auth(header: str) -> AuthConfig:
    """The ``X-Registry-Auth`` header. Like dockerd, an undecodable value means "no
    credentials" rather than an error (the CLI sends ``e30=``, i.e. ``{}``)."""
    if not header:
        return AuthConfig()
    try:
        return AuthConfig.from_json(json.loads(_b64decode(header)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return AuthConfig()


# ---- WWW-Authenticate --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lower case: "basic", "bearer"
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _token(text: str, i: int) -> tuple[str, int]:
    start = i
    while i < len(text) and text[i] not in ' \t,="':
        i += 1
    return text[start:i], i


def _quoted(text: str, i: int) -> tuple[str, int]:
    out = []
    i += 1  # opening quote
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    return "".join(out), i


def parse_challenges(headers: Iterable[str]) -> list[Challenge]:
    """Every challenge in the given ``WWW-Authenticate`` values, e.g.
    ``Bearer realm="https://auth.example/token",service="registry.example"``."""
    out: list[Challenge] = []
    for text in headers:
        i = 0
        scheme = ""
        params: dict[str, str] = {}
        while i < len(text):
            i = _skip_space(text, i)
            if i < len(text) and text[i] == ",":
                i += 1
                continue
            word, j = _token(text, i)
            if not word:
                i = j + 1
                continue
            k = _skip_space(text, j)
            if k < len(text) and text[k] == "=" and scheme:
                k = _skip_space(text, k + 1)
                if k < len(text) and text[k] == '"':
                    value, i = _quoted(text, k)
                else:
                    value, i = _token(text, k)
                params[word.lower()] = value
                continue
            # a new scheme starts
            if scheme:
                out.append(Challenge(scheme, params))
            scheme, params = word.lower(), {}
            i = j
        if scheme:
            out.append(Challenge(scheme, params))
    return out


# ---- tokens --------------------------------------------------------------------------------


class TokenResponse(Protocol):
    """What :class:`Authenticator` needs from an HTTP client (``RegistryTransport`` in
    ``runtime.images.registry`` implements it on aiohttp)."""

    async def fetch_token(
        self, method: str, url: str, params: list[tuple[str, str]], basic: tuple[str, str] | None
    ) -> tuple[int, bytes]: ...


@dataclass
class _Token:
    value: str
    expires: float


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def registry_error_text(status: int, body: bytes) -> str:
    """``code: message`` of the first error in a registry (or token server) error body,
    as distribution's errcode prints it; a generic text when the body is not one."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, Mapping):
        errors = doc.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
            code = str(errors[0].get("code") or "UNKNOWN").lower().replace("_", " ")
            message = str(errors[0].get("message") or "")
            return f"{code}: {message}" if message else code
        if isinstance(doc.get("details"), str):
            return f"unauthorized: {doc['details']}" if status == 401 else str(doc["details"])
    if status == 401:
        text = body.decode(errors="replace").strip()
        return f"unauthorized: {text}" if text else "unauthorized: authentication required"
    return f"unexpected status code {status}"


class Authenticator:
    """Authorization for one registry endpoint, from its challenges and the credentials.

    ``challenges`` comes from the ``/v2/`` ping (and is refreshed from any later 401). The
    cache is per scope set: a pull token is not reused for a push.
    """

    def __init__(self, auth: AuthConfig, transport: TokenResponse, *, offline_token: bool = False) -> None:
        self.auth = auth
        self._transport = transport
        self._offline = offline_token
        self.challenges: list[Challenge] = []
        self._tokens: dict[tuple[str, ...], _Token] = {}
        self.refresh_token = ""

    def update(self, challenges: list[Challenge]) -> None:
        if challenges:
            self.challenges = challenges
            self._tokens.clear()

    def _challenge(self, scheme: str) -> Challenge | None:
        return next((c for c in self.challenges if c.scheme == scheme), None)

    @property
    def required(self) -> bool:
        return bool(self.challenges)

    async def header(self, scopes: tuple[str, ...]) -> str | None:
        """The ``Authorization`` value for a request needing ``scopes``; None when the
        registry asked for none. Raises :class:`AuthError` as dockerd words it."""
        bearer = self._challenge("bearer")
        if bearer is not None:
            if self.auth.registry_token:
                return "Bearer " + self.auth.registry_token
            return "Bearer " + await self._bearer(bearer, scopes)
        if self._challenge("basic") is not None:
            creds = self.auth.credentials()
            if creds is None:
                raise AuthError("no basic auth credentials")
            return basic_header(*creds)
        return None

    async def _bearer(self, challenge: Challenge, scopes: tuple[str, ...]) -> str:
        key = tuple(sorted(scopes))
        cached = self._tokens.get(key)
        if cached is not None and cached.expires > time.monotonic():
            return cached.value
        realm = challenge.realm
        if not realm.startswith(("http://", "https://")):
            raise AuthError(f"invalid token auth challenge realm: {realm!r}")
        service = challenge.params.get("service", "")
        refresh = self.refresh_token or self.auth.identity_token
        if refresh:
            form = [("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "docker")]
            if service:
                form.append(("service", service))
            if scopes:
                form.append(("scope", " ".join(scopes)))
            if self._offline:
                form.append(("access_type", "offline"))
            status, body = await self._transport.fetch_token("POST", realm, form, None)
        else:
            params: list[tuple[str, str]] = []
            if service:
                params.append(("service", service))
            params += [("scope", s) for s in scopes]
            creds = self.auth.credentials()
            if creds is not None and creds[0]:
                params.append(("account", creds[0]))
            if self._offline:
                params += [("offline_token", "true"), ("client_id", "docker")]
            status, body = await self._transport.fetch_token("GET", realm, params, creds)
        if status != 200:
            raise AuthError(registry_error_text(status, body))
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise AuthError(f"unable to decode token response: {exc}") from exc
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, Mapping) else None
        if not isinstance(token, str) or not token:
            raise AuthError("authorization server did not include a token in the response")
        if isinstance(doc.get("refresh_token"), str) and doc["refresh_token"]:
            self.refresh_token = doc["refresh_token"]
        lifetime = doc.get("expires_in")
        seconds = lifetime if isinstance(lifetime, int) and lifetime > MIN_TOKEN_LIFETIME else MIN_TOKEN_LIFETIME
        # renew a little early so a token never expires between check and use
        self._tokens[key] = _Token(token, time.monotonic() + seconds - 5)
        return token


def repository_scope(path: str, actions: Iterable[str]) -> str:
    """``repository:<path>:<actions>`` as the token servers expect."""
    return f"repository:{path}:{','.join(actions)}"
