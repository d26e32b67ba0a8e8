"""Image references with Docker's grammar, normalisation and error messages.

``busybox`` is ``docker.io/library/busybox`` (and ``docker.io/library/busybox:latest``
once :meth:`Reference.with_default_tag` is applied); ``localhost:5000/a/b:t`` keeps its
domain; ``name@sha256:<hex>`` is a canonical (digested) reference. The familiar form
(``busybox:latest``) is what the CLI shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtime.errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = _ALNUM + r"(?:" + _SEPARATOR + _ALNUM + r")*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = r"(?:" + _DOMAIN_NAME + r"|" + _IPV6 + r")"
_DOMAIN_AND_PORT = _HOST + r"(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_REMOTE_NAME = _PATH_COMPONENT + r"(?:/" + _PATH_COMPONENT + r")*"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME

REFERENCE_RE = re.compile(
    r"^(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?$", re.ASCII
)
_ANCHORED_NAME_RE = re.compile(r"^(?:(" + _DOMAIN_AND_PORT + r")/)?(" + _REMOTE_NAME + r")$", re.ASCII)
_TAG_RE = re.compile(r"^" + _TAG + r"$", re.ASCII)
_IDENTIFIER_RE = re.compile(r"^[a-f0-9]{64}$")
_GO_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


class InvalidReference(InvalidParameter):
    """The string is not a valid image reference (Docker's wording in the message)."""


def parse_digest(value: str) -> str:
    """go-digest's ``digest.Parse``: returns the digest or raises InvalidReference."""
    if not _GO_DIGEST_RE.match(value):
        raise InvalidReference("invalid checksum digest format")
    algorithm, _, encoded = value.partition(":")
    expected = _DIGEST_LENGTHS.get(algorithm)
    if expected is None:
        raise InvalidReference("unsupported digest algorithm")
    if len(encoded) != expected:
        raise InvalidReference("invalid checksum digest length")
    if not re.fullmatch(r"[a-f0-9]+", encoded):
        raise InvalidReference("invalid checksum digest format")
    return value


@dataclass(frozen=True, slots=True)
class Reference:
    """A named reference: ``domain/path[:tag][@digest]`` (already normalised)."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        out = self.name
        if self.tag is not None:
            out += ":" + self.tag
        if self.digest is not None:
            out += "@" + self.digest
        return out

    @property
    def is_name_only(self) -> bool:
        return self.tag is None and self.digest is None

    def with_default_tag(self) -> Reference:
        """Docker's ``TagNameOnly``: add ``latest`` to a bare name."""
        if self.is_name_only:
            return Reference(self.domain, self.path, DEFAULT_TAG, None)
        return self

    def with_tag(self, tag: str) -> Reference:
        if not _TAG_RE.match(tag):
            raise InvalidReference("invalid tag format")
        return Reference(self.domain, self.path, tag, self.digest)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, self.tag, parse_digest(digest))

    def trimmed(self) -> Reference:
        """The name alone, without tag or digest."""
        return Reference(self.domain, self.path)

    @property
    def familiar_name(self) -> str:
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_PREFIX) and "/" not in path[len(OFFICIAL_PREFIX) :]:
            path = path[len(OFFICIAL_PREFIX) :]
        return path

    @property
    def familiar(self) -> str:
        """``busybox:latest`` for ``docker.io/library/busybox:latest``."""
        out = self.familiar_name
        if self.tag is not None:
            out += ":" + self.tag
        if self.digest is not None:
            out += "@" + self.digest
        return out


def parse(s: str) -> Reference:
    """distribution/reference ``Parse``: the grammar only, no normalisation."""
    if s == "":
        raise InvalidReference("repository name must have at least one component")
    m = REFERENCE_RE.match(s)
    if m is None:
        lowered = s.lower()
        if lowered != s and REFERENCE_RE.match(lowered):
            raise InvalidReference("repository name must be lowercase")
        raise InvalidReference("invalid reference format")
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    nm = _ANCHORED_NAME_RE.match(name)
    domain, path = (nm.group(1) or "", nm.group(2)) if nm else ("", name)
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    if digest is not None:
        parse_digest(digest)
    return Reference(domain, path, tag, digest)


def _split_docker_domain(name: str) -> tuple[str, str]:
    maybe_domain, sep, rest = name.partition("/")
    if not sep:
        return DEFAULT_DOMAIN, OFFICIAL_PREFIX + name
    if maybe_domain == "localhost":
        domain, remote = maybe_domain, rest
    elif maybe_domain == LEGACY_DEFAULT_DOMAIN:
        domain, remote = DEFAULT_DOMAIN, rest
    elif "." in maybe_domain or ":" in maybe_domain:
        domain, remote = maybe_domain, rest
    elif maybe_domain.lower() != maybe_domain:
        domain, remote = maybe_domain, rest
    else:
        domain, remote = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remote:
        remote = OFFICIAL_PREFIX + remote
    return domain, remote


def parse_normalized_named(s: str) -> Reference:
    """``ParseNormalizedNamed``: familiar names become fully qualified."""
    if _IDENTIFIER_RE.match(s):
        raise InvalidReference(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_docker_domain(s)
    if domain.lower() != domain and not any(c in domain for c in ".:"):
        # an upper-case first component is split off as a "domain" that no domain grammar
        # accepts; dockerd reports it as a name that must be lower case
        raise InvalidReference("invalid reference format: repository name must be lowercase")
    remote = remainder.partition(":")[0]
    if remote.lower() != remote:
        raise InvalidReference(f"invalid reference format: repository name ({remote}) must be lowercase")
    return parse(f"{domain}/{remainder}")


def parse_any(s: str) -> Reference | str:
    """``ParseAnyReference``: a 64-hex ID or ``sha256:`` digest comes back as a digest
    string, anything else as a normalised named reference."""
    if _IDENTIFIER_RE.match(s):
        return "sha256:" + s
    try:
        return parse_digest(s)
    except InvalidReference:
        pass
    return parse_normalized_named(s)


def repo_tag_reference(repo: str, tag: str) -> Reference | None:
    """The ``repo``/``tag`` query pair of import and commit (moby ``RepoTagReference``)."""
    if not repo:
        return None
    ref = parse_normalized_named(repo)
    if ref.digest is not None:
        raise InvalidReference("cannot import digest reference")
    if tag:
        return ref.with_tag(tag)
    return ref.with_default_tag()


# ---- reference filter (path.Match on the familiar string) --------------------------------


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Go's ``path.Match`` syntax: ``*`` and ``?`` never match ``/``; ``[...]`` classes
    (``^`` negates); ``\\`` escapes."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            i += 1
            if i >= len(pattern):
                raise InvalidParameter("syntax error in pattern")
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = i + 1
            if end < len(pattern) and pattern[end] == "^":
                end += 1
            if end < len(pattern) and pattern[end] == "]":
                raise InvalidParameter("syntax error in pattern")
            while end < len(pattern) and pattern[end] != "]":
                if pattern[end] == "\\":
                    end += 1
                end += 1
            if end >= len(pattern):
                raise InvalidParameter("syntax error in pattern")
            body = pattern[i + 1 : end]
            negate = body.startswith("^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\") if "\\" not in body else body
            out.append("[" + ("^/" if negate else "") + body.replace("[", "\\[") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + "$", re.DOTALL)


def familiar_match(pattern: str, ref: Reference) -> bool:
    """Docker's ``FamiliarMatch`` used by the ``reference`` filter of image lists."""
    rx = _glob_to_regex(pattern)
    if rx.match(ref.familiar):
        return True
    return bool(rx.match(ref.familiar_name))
