"""dockerd's breakout checks for ``PUT /containers/{id}/archive``, on the tar stream itself.

The extractor (:mod:`runtime.archive.extract`) already confines every member to the
destination, whatever its name or the links before it. dockerd goes further for
``docker cp``: it refuses (500, "Error processing tar file") a member whose cleaned name
climbs out of the destination (``../x``), a symlink whose *relative* target leaves it, and
a hardlink whose target does. :func:`guarded` reproduces those refusals: it parses the
headers of the uncompressed stream as chunks pass through and raises before handing on
the chunk that completes an offending header, so the extractor never sees that member.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator

from runtime.archive import tarheader as th
from runtime.archive.errors import ArchiveError, MalformedArchive
from runtime.gofmt import go_quote

_PREFIX = "Error processing tar file(exit status 1): "
_SPECIAL = (th.PAX, th.PAX_GLOBAL, th.GNU_LONGNAME, th.GNU_LONGLINK)
_HEADER_ONLY = frozenset((th.LNK, th.SYM, th.CHR, th.BLK, th.DIR, th.FIFO))
_MAX_SPECIAL = 1 << 20


def go_clean(path: str) -> str:
    """Go's ``filepath.Clean`` (keeps leading ``..`` of relative paths)."""
    if not path:
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(comp)
    cleaned = "/".join(out)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def _join(*parts: str) -> str:
    return go_clean("/".join(p for p in parts if p))


def check_member(entry: th.TarEntry, dest: str) -> None:
    """Raise dockerd's error when ``entry`` would leave ``dest`` (a clean absolute path)."""
    name = go_clean(entry.name)
    path = _join(dest, name)
    rel = posixpath.relpath(path, dest)
    if rel == ".." or rel.startswith("../"):
        raise ArchiveError(f"{_PREFIX}{go_quote(name)} is outside of {go_quote(dest)}")
    if entry.type == th.SYM:
        target = _join(posixpath.dirname(path), entry.linkname)
        if not target.startswith(dest):
            raise ArchiveError(
                f"{_PREFIX}invalid symlink {go_quote(path)} -> {go_quote(entry.linkname)}")
    elif entry.type == th.LNK:
        target = _join(dest, entry.linkname)
        if not target.startswith(dest):
            raise ArchiveError(
                f"{_PREFIX}invalid hardlink {go_quote(target)} -> {go_quote(entry.linkname)}")


def guarded(chunks: Iterable[bytes], dest: str, names: list[str] | None = None) -> Iterator[bytes]:
    """Pass ``chunks`` (an uncompressed tar stream) through, checking every member header
    with :func:`check_member` before the chunk completing it is handed on. Malformed
    input is left for the extractor to report. ``names`` collects the members' cleaned
    names (relative to ``dest``)."""
    buf = bytearray()
    skip = 0
    pax: dict[str, bytes] = {}
    long_name: bytes | None = None
    long_link: bytes | None = None
    checking = True
    for chunk in chunks:
        if checking:
            buf += chunk
            while True:
                if skip:
                    step = min(skip, len(buf))
                    del buf[:step]
                    skip -= step
                    if skip:
                        break
                if len(buf) < th.BLOCK:
                    break
                block = bytes(buf[: th.BLOCK])
                if block == th.ZERO_BLOCK:
                    checking = False  # end of archive: the rest is not ours to judge
                    break
                try:
                    raw = th.parse_block(block)
                    if raw.type in _SPECIAL:
                        if raw.size > _MAX_SPECIAL:
                            raise MalformedArchive("archive/tar: header field too long")
                        total = th.BLOCK + raw.size + (-raw.size % th.BLOCK)
                        if len(buf) < total:
                            break
                        payload = bytes(buf[th.BLOCK : th.BLOCK + raw.size])
                        del buf[:total]
                        if raw.type == th.PAX:
                            pax.update(th.parse_pax(payload))
                        elif raw.type == th.GNU_LONGNAME:
                            long_name = payload.rstrip(b"\x00")
                        elif raw.type == th.GNU_LONGLINK:
                            long_link = payload.rstrip(b"\x00")
                        continue
                    entry = th.build_entry(raw, pax, long_name, long_link)
                except MalformedArchive:
                    checking = False  # the extractor reports it, with its own wording
                    break
                check_member(entry, dest)
                if names is not None:
                    names.append(go_clean("/" + entry.name).lstrip("/"))
                pax, long_name, long_link = {}, None, None
                del buf[: th.BLOCK]
                size = 0 if entry.type in _HEADER_ONLY else entry.size
                skip = size + (-size % th.BLOCK)
            if not checking:
                buf.clear()
        yield chunk


__all__ = ["guarded", "check_member", "go_clean"]
