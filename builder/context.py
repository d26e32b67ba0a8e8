"""The build context: the request's tar unpacked into a private directory.

Unpacking goes through the engine's safe extractor (``runtime.archive``): member names
and symlinks cannot place anything outside the context directory. While reading, every
member gets the checksum dockerd's classic builder gives it (a per-file TarSum v1: the
selected header fields, then the content), which ``COPY``/``ADD`` use in their cache keys
and history (``COPY file:<sum> in /dest``).

Paths inside the context are resolved like dockerd's ``FollowSymlinkInScope``: symlinks
are followed, but always inside the context; a path that names something outside it
lexically (``../x``) is refused.

The CLI and docker-py apply ``.dockerignore`` themselves before sending the context; the
daemon only removes the Dockerfile and ``.dockerignore`` when they are excluded by it,
as dockerd does.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from builder.errors import BuildStepError
from runtime.archive import tarheader as th
from runtime.archive.compression import Readable, decompressed_chunks
from runtime.archive.errors import MalformedArchive
from runtime.archive.extract import ExtractOptions, WhiteoutMode, extract_chunks
from runtime.errors import InvalidParameter, SystemError_

DEFAULT_DOCKERFILE = "Dockerfile"
MAX_SYMLINKS = 255
_CHUNK = 1 << 20


class PathOutsideContext(BuildStepError):
    def __init__(self, path: str) -> None:
        super().__init__(f"forbidden path outside the build context: {path} ()")


def clean_relative(path: str) -> str:
    """``path`` cleaned as if joined to "/" ("" for the root)."""
    cleaned = posixpath.normpath("/" + path)
    return cleaned.lstrip("/")


def escapes_root(path: str) -> bool:
    """Whether ``root/path`` names something outside ``root`` before symlinks are looked at."""
    joined = posixpath.normpath(path) if path else "."
    return joined == ".." or joined.startswith("../")


def resolve_in_scope(root: str | Path, path: str, follow_final: bool = True) -> str:
    """The symlink-free path of ``path`` below ``root``, relative to it ("" = root).

    Symlinks (absolute ones relative to ``root``) are followed but never leave ``root``;
    components that do not exist are kept as written."""
    base = os.fspath(root)
    pending = [p for p in path.split("/")][::-1]
    resolved: list[str] = []
    links = 0
    while pending:
        comp = pending.pop()
        if comp in ("", "."):
            continue
        if comp == "..":
            if resolved:
                resolved.pop()
            continue
        full = os.path.join(base, *resolved, comp)
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(comp)
            continue
        if stat.S_ISLNK(st.st_mode) and (pending or follow_final):
            links += 1
            if links > MAX_SYMLINKS:
                raise OSError(errno.ELOOP, "too many links", path)
            target = os.readlink(full)
            if target.startswith("/"):
                resolved = []
            pending.extend(target.split("/")[::-1])
            continue
        resolved.append(comp)
    return "/".join(resolved)


# ---- .dockerignore ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IgnorePattern:
    pattern: str
    exclusion: bool
    regex: re.Pattern[str]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 1
                if i + 1 < n and pattern[i + 1] == "/":
                    i += 1
                    out.append("(.*/)?")  # "**/" matches zero or more directories
                else:
                    out.append(".*")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1:end]
                if body.startswith("^"):
                    body = "^" + body[1:].replace("\\", "\\\\")
                else:
                    body = body.replace("\\", "\\\\")
                out.append("[" + body + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out))


def read_dockerignore(text: str) -> list[IgnorePattern]:
    """Patterns of a ``.dockerignore`` (comments, blank lines and ``!`` exceptions)."""
    patterns: list[IgnorePattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        if not line:
            continue
        line = posixpath.normpath(line)
        if len(line) > 1 and line.startswith("/"):
            line = line[1:]
        patterns.append(IgnorePattern(line, exclusion, _pattern_regex(line)))
    return patterns


def is_ignored(path: str, patterns: Sequence[IgnorePattern]) -> bool:
    """Whether ``path`` (relative) is excluded: the last matching pattern decides; a
    pattern matching a parent directory matches everything below it."""
    path = clean_relative(path)
    parents = []
    head = posixpath.dirname(path)
    while head:
        parents.append(head)
        head = posixpath.dirname(head)
    matched = False
    for p in patterns:
        hit = bool(p.regex.match(path)) or any(p.regex.match(parent) for parent in parents)
        if hit:
            matched = not p.exclusion
    return matched


# ---- TarSum v1 of each member -------------------------------------------------------------


class _FileSource:
    def __init__(self, path: Path) -> None:
        self._f = open(path, "rb")

    def read(self, n: int) -> bytes:
        return self._f.read(n)

    def skip(self, n: int) -> None:
        self._f.seek(n, os.SEEK_CUR)

    def close(self) -> None:
        self._f.close()


def _header_sum(name: bytes, raw: th.RawHeader, size: int, linkname: bytes, uid: int, gid: int,
                xattrs: dict[str, bytes]) -> hashlib._Hash:
    h = hashlib.sha256()
    fields = (
        (b"name", name), (b"mode", str(raw.mode).encode()), (b"uid", str(uid).encode()),
        (b"gid", str(gid).encode()), (b"size", str(size).encode()), (b"typeflag", raw.type),
        (b"linkname", linkname), (b"uname", b""), (b"gname", b""),
        (b"devmajor", str(raw.devmajor).encode()), (b"devminor", str(raw.devminor).encode()),
    )
    for field_name, value in fields:
        h.update(field_name + value)
    for key in sorted(xattrs):
        h.update(key.encode("utf-8", "surrogateescape") + xattrs[key])
    return h


def tarsums(tar_path: Path) -> dict[str, str]:
    """Cleaned member path -> TarSum v1 hex of that member (first occurrence wins)."""
    sums: dict[str, str] = {}
    src = _FileSource(tar_path)
    try:
        pax: dict[str, bytes] = {}
        long_name: bytes | None = None
        long_link: bytes | None = None
        while True:
            block = src.read(th.BLOCK)
            if not block or block == th.ZERO_BLOCK:
                break
            if len(block) < th.BLOCK:
                raise MalformedArchive("unexpected EOF")
            raw = th.parse_block(block)
            padded = raw.size + (-raw.size % th.BLOCK)
            if raw.type in (th.PAX, th.PAX_GLOBAL, th.GNU_LONGNAME, th.GNU_LONGLINK):
                payload = src.read(raw.size)
                if len(payload) < raw.size:
                    raise MalformedArchive("unexpected EOF")
                src.skip(padded - raw.size)
                if raw.type == th.PAX:
                    pax.update(th.parse_pax(payload))
                elif raw.type == th.GNU_LONGNAME:
                    long_name = payload.rstrip(b"\x00")
                elif raw.type == th.GNU_LONGLINK:
                    long_link = payload.rstrip(b"\x00")
                continue
            name = pax.get("path", long_name if long_name is not None else raw.name)
            linkname = pax.get("linkpath", long_link if long_link is not None else raw.linkname)
            size = int(pax["size"]) if "size" in pax else raw.size
            uid = int(pax["uid"]) if "uid" in pax else raw.uid
            gid = int(pax["gid"]) if "gid" in pax else raw.gid
            xattrs = {k[len(th.XATTR_PREFIX):]: v for k, v in pax.items() if k.startswith(th.XATTR_PREFIX)}
            pax, long_name, long_link = {}, None, None
            h = _header_sum(name, raw, size, linkname, uid, gid, xattrs)
            content = 0 if raw.type in (th.LNK, th.SYM, th.CHR, th.BLK, th.DIR, th.FIFO) else size
            remaining = content
            while remaining > 0:
                data = src.read(min(_CHUNK, remaining))
                if not data:
                    raise MalformedArchive("unexpected EOF")
                h.update(data)
                remaining -= len(data)
            src.skip(content + (-content % th.BLOCK) - content)
            key = clean_relative(name.decode("utf-8", "surrogateescape")) or "."
            sums.setdefault(key, h.hexdigest())
    finally:
        src.close()
    return sums


# ---- the context --------------------------------------------------------------------------


@dataclass
class BuildContext:
    """An unpacked context. ``hash(path)`` is the classic builder's per-path checksum."""

    directory: Path  # holds ``root`` and the spooled tar; removed by close()
    root: Path
    sums: dict[str, str] = field(default_factory=dict)

    def full_path(self, path: str) -> Path:
        if escapes_root(path):
            raise PathOutsideContext(path)
        return self.root / resolve_in_scope(self.root, path)

    def hash(self, path: str) -> str:
        if escapes_root(path):
            raise PathOutsideContext(path)
        real = resolve_in_scope(self.root, path) or "."
        return self.sums.get(real, path)

    def remove(self, path: str) -> None:
        target = self.full_path(path)
        if target == self.root:
            return
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        else:
            try:
                target.unlink()
            except FileNotFoundError:
                pass

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _spool(chunks: Iterator[bytes], path: Path) -> None:
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(chunk)


def _pad_to_block(path: Path) -> None:
    """Complete a tar whose last member's padding is cut off: Go's reader (dockerd's)
    takes an end of input there as the end of the archive, and the CLI sends such tars
    for ``docker build -f - <dir>``. Cut-off content is rejected before this by
    :func:`tarsums`."""
    size = path.stat().st_size
    if size % th.BLOCK:
        with open(path, "ab") as f:
            f.write(bytes(th.BLOCK - size % th.BLOCK))


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while True:
            data = f.read(_CHUNK)
            if not data:
                return
            yield data


def open_context(source: Readable, scratch: Path) -> BuildContext:
    """Unpack a (possibly compressed) tar stream into a new directory under ``scratch``.
    Blocking: call from a worker thread."""
    scratch.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="docker-builder", dir=scratch))
    try:
        os.chmod(directory, 0o700)
        spool = directory / "context.tar"
        _kind, chunks = decompressed_chunks(source)
        _spool(chunks, spool)
        sums = tarsums(spool)
        _pad_to_block(spool)
        root = directory / "root"
        root.mkdir()
        os.chmod(root, 0o755)
        # dockerd unpacks the context with its defaults: owners kept, AUFS-style
        # whiteouts applied (a context is not a layer)
        extract_chunks(_file_chunks(spool), root, ExtractOptions(whiteouts=WhiteoutMode.DELETE))
        spool.unlink()
        return BuildContext(directory, root, sums)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def read_dockerfile(context: BuildContext, name: str) -> tuple[str, bytes]:
    """(the name used, its bytes) of the Dockerfile in the context; ``Dockerfile`` falls
    back to ``dockerfile``. Afterwards the Dockerfile and ``.dockerignore`` are removed
    from the context if ``.dockerignore`` excludes them."""
    for candidate in (name, name.lower()) if name == DEFAULT_DOCKERFILE else (name,):
        try:
            path = context.full_path(candidate)
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PathOutsideContext):
            continue
        break
    else:
        raise SystemError_(f"Cannot locate specified Dockerfile: {name}")
    if not data:
        raise InvalidParameter(f"the Dockerfile ({name}) cannot be empty")
    _remove_ignored(context, candidate)
    return candidate, data


def _remove_ignored(context: BuildContext, dockerfile: str) -> None:
    try:
        text = context.full_path(".dockerignore").read_text("utf-8", "replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return
    patterns = read_dockerignore(text)
    for path in (".dockerignore", dockerfile):
        if is_ignored(path, patterns):
            context.remove(path)


__all__ = ["BuildContext", "open_context", "read_dockerfile", "resolve_in_scope", "clean_relative",
           "escapes_root", "read_dockerignore", "is_ignored", "tarsums", "PathOutsideContext",
           "DEFAULT_DOCKERFILE"]
