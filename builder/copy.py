"""``COPY`` and ``ADD``: which files a source names, their checksums, and the copy itself.

Sources are resolved in a source tree (the build context, or a mounted image or stage
for ``COPY --from``); wildcards match path by path like Go's ``filepath.Match``. Each
source gets the classic builder's cache checksum: ``file:<sum>`` for a file, ``dir:<sum>``
over everything below a directory, and ``multi:<sum>`` when there are several.

The copy writes into a mounted writable layer. Files are packed as a tar and unpacked by
the engine's safe extractor into the destination directory, so nothing the image
contains (symlinks included) can redirect a write outside the layer: the destination is
resolved inside the layer's root, like dockerd's ``FollowSymlinkInScope`` and chroot'ed
unpacking. Ownership follows dockerd: root (or ``--chown``) for everything copied and for
directories the copy creates; ``COPY --from`` without ``--chown`` keeps the owners.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import posixpath
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from builder.context import BuildContext, PathOutsideContext, escapes_root, resolve_in_scope
from builder.errors import BuildStepError
from runtime.archive import tarheader as th
from runtime.archive.compression import decompressed_chunks
from runtime.archive.errors import MalformedArchive
from runtime.archive.extract import ExtractOptions, WhiteoutMode, extract_chunks
from runtime.archive.rootfd import DIR_FLAGS, RootFD
from runtime.archive.writer import file_blocks, tar_directory

_READ = 1 << 20
_TYPE_BITS = {th.REG: 0o100000, th.DIR: 0o40000, th.SYM: 0o120000, th.CHR: 0o20000,
              th.BLK: 0o60000, th.FIFO: 0o10000}


# ---- sources ------------------------------------------------------------------------------


class SourceTree:
    """Files a ``COPY`` reads: ``root`` on disk and the builder's checksum of a path."""

    def __init__(self, root: Path, hash_fn: Callable[[str], str], is_context: bool) -> None:
        self.root = root
        self._hash = hash_fn
        self.is_context = is_context

    @classmethod
    def of_context(cls, context: BuildContext) -> SourceTree:
        return cls(context.root, context.hash, True)

    @classmethod
    def of_directory(cls, root: Path) -> SourceTree:
        """An image's files (``COPY --from``): checksums computed from the files."""
        sums: dict[str, str] = {}

        def lazy(path: str) -> str:
            real = resolve_in_scope(root, path) or "."
            if real not in sums:
                try:
                    sums[real] = _file_hash(root, real)
                except FileNotFoundError:
                    return real
            return sums[real]

        return cls(root, lazy, False)

    def hash(self, path: str) -> str:
        return self._hash(path)

    def full_path(self, path: str) -> Path:
        if escapes_root(path):
            raise PathOutsideContext(path)
        return self.root / resolve_in_scope(self.root, path)


def _file_hash(root: Path, real: str) -> str:
    """dockerd's lazy-source checksum: a TarSum v1 header made from ``lstat`` (with the
    host's user and group names, which context checksums leave out), then the content."""
    full = root / real if real != "." else root
    st = os.lstat(full)
    typ = th.mode_type(st.st_mode)
    if typ is None:
        raise BuildStepError(f"failed to create hash for {real}: archive/tar: sockets not supported")
    mode = stat.S_IMODE(st.st_mode) | _TYPE_BITS.get(typ, 0)
    name = real + "/" if typ == th.DIR and not real.endswith("/") else real
    linkname = os.readlink(full) if typ == th.SYM else ""
    size = st.st_size if typ == th.REG else 0
    major = os.major(st.st_rdev) if typ in (th.CHR, th.BLK) else 0
    minor = os.minor(st.st_rdev) if typ in (th.CHR, th.BLK) else 0
    h = hashlib.sha256()
    for key, value in (("name", name), ("mode", str(mode)), ("uid", str(st.st_uid)),
                       ("gid", str(st.st_gid)), ("size", str(size)), ("typeflag", typ.decode()),
                       ("linkname", linkname), ("uname", _user_name(st.st_uid)),
                       ("gname", _group_name(st.st_gid)),
                       ("devmajor", str(major)), ("devminor", str(minor))):
        h.update((key + value).encode("utf-8", "surrogateescape"))
    if typ == th.REG and size:
        with open(full, "rb", buffering=0) as f:
            while chunk := f.read(_READ):
                h.update(chunk)
    return h.hexdigest()


def _user_name(uid: int) -> str:
    # Go's tar.FileInfoHeader fills Uname/Gname from the daemon host's user database
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


@dataclass(frozen=True, slots=True)
class CopyInfo:
    """One source to copy: ``path`` relative to ``tree.root`` and its checksum."""

    tree: SourceTree
    path: str
    hash: str
    no_decompress: bool = False


def contains_wildcards(name: str) -> bool:
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == "\\":
            i += 1
        elif ch in "*?[":
            return True
        i += 1
    return False


def go_match(pattern: str, name: str) -> bool:
    """Go's ``filepath.Match`` (``*`` and ``?`` never match ``/``); a malformed pattern
    matches nothing, as dockerd ignores the error."""
    try:
        return _match(pattern, name)
    except ValueError:
        return False


def _match(pattern: str, name: str) -> bool:
    # iterative matcher with backtracking on the last '*'
    p = n = 0
    star_p = star_n = -1
    while n < len(name) or p < len(pattern):
        if p < len(pattern):
            ch = pattern[p]
            if ch == "*":
                star_p, star_n = p, n
                p += 1
                continue
            if n < len(name) and name[n] != "/":
                if ch == "?":
                    p += 1
                    n += 1
                    continue
                if ch == "[":
                    matched, end = _class(pattern, p, name[n])
                    if matched:
                        p = end
                        n += 1
                        continue
                elif ch == "\\":
                    if p + 1 >= len(pattern):
                        raise ValueError("bad pattern")
                    if pattern[p + 1] == name[n]:
                        p += 2
                        n += 1
                        continue
                elif ch == name[n]:
                    p += 1
                    n += 1
                    continue
            elif n < len(name) and ch == name[n] == "/":
                p += 1
                n += 1
                continue
        if star_p >= 0 and star_n < len(name) and name[star_n] != "/":
            star_n += 1
            p, n = star_p + 1, star_n
            continue
        return False
    return True


def _class(pattern: str, start: int, ch: str) -> tuple[bool, int]:
    i = start + 1
    negate = i < len(pattern) and pattern[i] == "^"
    if negate:
        i += 1
    matched = False
    first = True
    while True:
        if i >= len(pattern):
            raise ValueError("bad pattern")
        if pattern[i] == "]" and not first:
            i += 1
            break
        first = False
        lo = pattern[i]
        if lo == "\\":
            i += 1
            if i >= len(pattern):
                raise ValueError("bad pattern")
            lo = pattern[i]
        i += 1
        hi = lo
        if i + 1 < len(pattern) and pattern[i] == "-" and pattern[i + 1] != "]":
            hi = pattern[i + 1]
            if hi == "\\":
                i += 1
                hi = pattern[i + 1]
            i += 2
        if lo <= ch <= hi:
            matched = True
    return matched != negate, i


def _walk(root: Path, top: str = "") -> Iterator[str]:
    """Relative paths below ``root/top`` in lexical order (directories before their
    contents, symlinks not followed), like ``filepath.WalkDir``."""
    base = root / top if top else root
    try:
        names = sorted(os.listdir(base))
    except (NotADirectoryError, FileNotFoundError):
        return
    for name in names:
        rel = f"{top}/{name}" if top else name
        yield rel
        full = base / name
        if full.is_dir() and not full.is_symlink():
            yield from _walk(root, rel)


def _dir_hash(tree: SourceTree, path: str) -> str:
    real = resolve_in_scope(tree.root, path)
    # like filepath.WalkDir, the walk includes the directory itself (not the context root)
    entries = ([real] if real else []) + list(_walk(tree.root, real))
    hashes = sorted(tree.hash(rel) for rel in entries)
    return "dir:" + hashlib.sha256(",".join(hashes).encode()).hexdigest()


def _not_found(tree: SourceTree, path: str) -> BuildStepError:
    message = f"stat {path}: file does not exist"
    if tree.is_context:
        message = "file not found in build context or excluded by .dockerignore: " + message
    return BuildStepError(message)


def copy_infos_for(tree: SourceTree, orig: str, allow_wildcards: bool = True) -> list[CopyInfo]:
    """The sources ``orig`` names (several with wildcards)."""
    path = orig
    if path.startswith("/"):
        path = path[1:]
    if path.startswith("./"):
        path = path[2:]
    if allow_wildcards and contains_wildcards(path):
        infos: list[CopyInfo] = []
        for rel in _walk(tree.root):
            if go_match(path, rel):
                infos += copy_infos_for(tree, rel, False)
        return infos
    full = tree.full_path(path)
    try:
        st = os.stat(full)
    except (FileNotFoundError, NotADirectoryError):
        raise _not_found(tree, path) from None
    if stat.S_ISDIR(st.st_mode):
        return [CopyInfo(tree, path, _dir_hash(tree, path))]
    return [CopyInfo(tree, path, "file:" + tree.hash(path))]


def source_hash(infos: list[CopyInfo]) -> str:
    if len(infos) == 1:
        return infos[0].hash
    joined = ",".join(i.hash for i in infos)
    return "multi:" + hashlib.sha256(joined.encode()).hexdigest()


def normalize_dest(working_dir: str, requested: str) -> str:
    """The destination made absolute against WORKDIR (a trailing slash is kept)."""
    if requested.startswith("/"):
        return requested
    dest = posixpath.join("/", working_dir, requested)
    dest = posixpath.normpath(dest)
    if dest.startswith("//"):
        dest = dest[1:]
    return dest + "/" if requested.endswith("/") else dest


# ---- ownership ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identity:
    uid: int
    gid: int


def _lookup(name: str, db_path: Path, kind: str) -> int:
    try:
        return int(name, 10)
    except ValueError:
        pass
    with open(db_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.rstrip("\n").split(":")
            if len(fields) >= 3 and fields[0] == name:
                try:
                    return int(fields[2])
                except ValueError:
                    continue
    raise LookupError(f"no such {kind}: {name}")


def parse_chown(spec: str, layer_root: Path) -> Identity:
    """``--chown=user[:group]`` with names looked up in the image's passwd/group (a
    missing group part uses the user part, as dockerd does)."""
    parts = spec.split(":")
    if len(parts) > 2:
        raise BuildStepError(f"unable to convert uid/gid chown string to host mapping: invalid chown string format: {spec}")
    user, group = (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    passwd = layer_root / resolve_in_scope(layer_root, "etc/passwd")
    groupdb = layer_root / resolve_in_scope(layer_root, "etc/group")
    prefix = "unable to convert uid/gid chown string to host mapping: "
    try:
        uid = _lookup(user, passwd, "user")
    except (LookupError, OSError) as exc:
        raise BuildStepError(f"{prefix}can't find uid for user {user}: {_reason(exc, passwd)}") from None
    try:
        gid = _lookup(group, groupdb, "group")
    except (LookupError, OSError) as exc:
        raise BuildStepError(f"{prefix}can't find gid for group {group}: {_reason(exc, groupdb)}") from None
    return Identity(uid, gid)


def _reason(exc: BaseException, path: Path) -> str:
    if isinstance(exc, OSError):
        return f"open {path}: {(exc.strerror or str(exc)).lower()}"
    return str(exc.args[0]) if exc.args else str(exc)


# ---- copying ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CopyOptions:
    identity: Identity | None  # None: keep the source owners (COPY --from)
    decompress: bool = False  # ADD: unpack local tar archives


def _mkdirs(root: Path, real: str, identity: Identity | None) -> None:
    """Create the missing directories of ``real`` (symlink-free, relative) with 0755,
    owned by ``identity`` (root when None)."""
    current = root
    for comp in [c for c in real.split("/") if c]:
        current = current / comp
        try:
            os.mkdir(current, 0o755)
        except FileExistsError:
            continue
        os.chmod(current, 0o755)
        if identity is not None:
            os.lchown(current, identity.uid, identity.gid)


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False


def _open_dir(root: Path, real: str) -> int:
    fd = os.open(root, DIR_FLAGS)
    if not real:
        return fd
    try:
        resolver = RootFD(fd)
        try:
            d = resolver.dir(real)
            return os.dup(d.fd) if d.fd != fd else os.dup(fd)
        finally:
            resolver.close()
    finally:
        os.close(fd)


def is_archive(path: Path) -> bool:
    """A (possibly compressed) tar: the first header block has a valid checksum."""
    try:
        with open(path, "rb") as f:
            _kind, chunks = decompressed_chunks(f)
            head = b""
            for chunk in chunks:
                head += chunk
                if len(head) >= th.BLOCK:
                    break
    except Exception:  # noqa: BLE001 - anything undecodable is "not an archive"
        return False
    if len(head) < th.BLOCK or head[:th.BLOCK] == th.ZERO_BLOCK:
        return False
    try:
        return th.checksum_ok(head[:th.BLOCK])
    except MalformedArchive:
        return False


def _file_tar(src: Path, name: str) -> Iterator[bytes]:
    st = os.lstat(src)
    typ = th.mode_type(st.st_mode) or th.REG
    if typ == th.SYM:
        entry = th.TarEntry(name=name, type=th.SYM, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid,
                            gid=st.st_gid, mtime_ns=int(st.st_mtime) * 1_000_000_000,
                            linkname=os.readlink(src))
        yield th.encode_header(entry)
    elif typ == th.REG:
        entry = th.TarEntry(name=name, type=th.REG, size=st.st_size, mode=stat.S_IMODE(st.st_mode),
                            uid=st.st_uid, gid=st.st_gid, mtime_ns=int(st.st_mtime) * 1_000_000_000)
        yield th.encode_header(entry)
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            yield from file_blocks(fd, st.st_size)
        finally:
            os.close(fd)
    else:
        entry = th.TarEntry(name=name, type=typ, mode=stat.S_IMODE(st.st_mode), uid=st.st_uid,
                            gid=st.st_gid, mtime_ns=int(st.st_mtime) * 1_000_000_000,
                            devmajor=os.major(st.st_rdev) if typ in (th.CHR, th.BLK) else 0,
                            devminor=os.minor(st.st_rdev) if typ in (th.CHR, th.BLK) else 0)
        yield th.encode_header(entry)
    yield bytes(2 * th.BLOCK)


def _chown_copied(dest_fd: int, names: list[str], identity: Identity) -> None:
    """lchown what was copied (paths relative to the destination), resolving parents
    inside it (dockerd's ``fixPermissions``)."""
    resolver = RootFD(dest_fd)
    try:
        for rel in names:
            if not rel:
                os.chown(dest_fd, identity.uid, identity.gid)
                continue
            parent, name = resolver.parent_of(rel)
            os.chown(name, identity.uid, identity.gid, dir_fd=parent.fd, follow_symlinks=False)
    finally:
        resolver.close()


_EXTRACT = ExtractOptions(whiteouts=WhiteoutMode.KEEP, preserve_owner=True)


def perform_copy(layer_root: Path, dest: str, info: CopyInfo, options: CopyOptions) -> None:
    """Copy one source into the mounted layer at ``layer_root`` (``dest`` absolute, a
    trailing slash meaning "into this directory"). Blocking."""
    src = info.tree.full_path(info.path)
    try:
        st = os.stat(src)
    except (FileNotFoundError, NotADirectoryError):
        raise BuildStepError("source path not found") from None
    dest_real = resolve_in_scope(layer_root, dest)
    if stat.S_ISDIR(st.st_mode):
        _copy_directory(src, layer_root, dest_real, options.identity)
        return
    if options.decompress and not info.no_decompress and is_archive(src):
        _mkdirs(layer_root, dest_real, None)
        fd = _open_dir(layer_root, dest_real)
        try:
            with open(src, "rb") as f:
                _kind, chunks = decompressed_chunks(f)
                extract_chunks(chunks, fd, ExtractOptions(whiteouts=WhiteoutMode.DELETE))
        finally:
            os.close(fd)
        return
    target = dest_real
    if _is_dir(layer_root / dest_real) or dest.endswith("/"):
        target = posixpath.join(dest_real, posixpath.basename(info.path.rstrip("/"))) if dest_real else \
            posixpath.basename(info.path.rstrip("/"))
    parent, name = posixpath.split(target)
    if not name:
        raise BuildStepError("failed to copy files: cannot copy to the root directory")
    _mkdirs(layer_root, parent, options.identity)
    fd = _open_dir(layer_root, parent)
    try:
        extract_chunks(_file_tar(src, name), fd, _EXTRACT)
        if options.identity is not None:
            os.chown(name, options.identity.uid, options.identity.gid, dir_fd=fd, follow_symlinks=False)
    finally:
        os.close(fd)


def _copy_directory(src: Path, layer_root: Path, dest_real: str, identity: Identity | None) -> None:
    existed = _is_dir(layer_root / dest_real)
    if not existed:
        _mkdirs(layer_root, dest_real, None)
    fd = _open_dir(layer_root, dest_real)
    try:
        extract_chunks(tar_directory(src, overlay_whiteouts=False), fd, _EXTRACT)
        if identity is not None:
            names = list(_walk(src))
            if not existed:
                names.insert(0, "")
            _chown_copied(fd, names, identity)
    finally:
        os.close(fd)


__all__ = ["SourceTree", "CopyInfo", "CopyOptions", "Identity", "copy_infos_for", "source_hash",
           "normalize_dest", "parse_chown", "perform_copy", "contains_wildcards", "go_match",
           "is_archive"]
