"""Hostile tar archives for ``docker import`` / ``docker load`` containment tests.

Every archive aims at a *marker directory* on the host (a fresh directory under /tmp that the
test owns): if the engine ever follows a name, symlink or hardlink out of its data root, a file
appears in (or is read from) that directory. Builders return bytes; nothing here talks to an
engine.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z

#: Enough "../" to climb from any data root (``/var/lib/<x>/overlay2/<id>/diff`` ...) to "/".
CLIMB = "../" * 40

PWNED = b"pwned by a hostile archive\n"


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.linkname = linkname
    return info


@dataclass(frozen=True, slots=True)
class Entry:
    """One tar member: a regular file (``data``), directory, symlink or hardlink."""

    name: str
    kind: bytes = tarfile.REGTYPE
    data: bytes = b""
    linkname: str = ""


def file(name: str, data: bytes = PWNED) -> Entry:
    return Entry(name, tarfile.REGTYPE, data)


def directory(name: str) -> Entry:
    return Entry(name, tarfile.DIRTYPE)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.SYMTYPE, linkname=target)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.LNKTYPE, linkname=target)


def build_tar(entries: Sequence[Entry], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """The entries in order, verbatim: tarfile does not sanitise names when *writing*."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for e in entries:
            info = _info(e.name, e.kind, len(e.data), e.linkname)
            tar.addfile(info, io.BytesIO(e.data) if e.kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def docker_archive(layer: bytes, repo_tag: str | None) -> bytes:
    """A minimal docker-archive (``docker save`` format) with ``layer`` as its only layer.

    The config's diff ID is the layer's real digest, so the engine must get as far as
    unpacking the layer before it can object.
    """
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2000-01-01T00:00:00Z",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": "2000-01-01T00:00:00Z", "comment": "hostile"}],
        },
        separators=(",", ":"),
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = hashlib.sha256(layer).hexdigest() + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [repo_tag] if repo_tag else [], "Layers": [layer_name]}]
    return build_tar(
        [
            directory(layer_name.split("/")[0] + "/"),
            Entry(layer_name, data=layer),
            Entry(config_name, data=config),
            Entry("manifest.json", data=json.dumps(manifest).encode()),
        ],
        fmt=tarfile.USTAR_FORMAT,
    )


def image_id_of(archive: bytes) -> str:
    """The image ID (``sha256:`` of the config) that :func:`docker_archive` wrote."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = tar.extractfile(manifest[0]["Config"]).read()  # type: ignore[union-attr]
    return "sha256:" + hashlib.sha256(config).hexdigest()


@dataclass(frozen=True, slots=True)
class HostileCase:
    """A named hostile layer aimed at ``marker`` (an absolute host directory)."""

    name: str
    build: Callable[[Path], bytes]
    #: paths (relative to the marker dir) that must never appear
    forbidden: tuple[str, ...] = ("pwned",)


def _long_dir(total: int) -> str:
    """A relative directory path of about ``total`` characters, each component 200 long."""
    parts: list[str] = []
    length = 0
    i = 0
    while length < total:
        part = f"{i:03d}" + "d" * 197
        parts.append(part)
        length += len(part) + 1
        i += 1
    return "/".join(parts)


def _marker_rel(marker: Path) -> str:
    return str(marker).lstrip("/")


CASES: tuple[HostileCase, ...] = (
    HostileCase("dotdot", lambda m: build_tar([file(CLIMB + _marker_rel(m) + "/pwned")])),
    HostileCase("dotdot-inner", lambda m: build_tar([directory("a/"), file("a/" + CLIMB + _marker_rel(m) + "/pwned")])),
    HostileCase("absolute", lambda m: build_tar([file(f"{m}/pwned")])),
    HostileCase(
        "symlink-abs-write-through",
        lambda m: build_tar([symlink("evil", str(m)), file("evil/pwned")]),
    ),
    HostileCase(
        "symlink-rel-write-through",
        lambda m: build_tar([symlink("evil", CLIMB + _marker_rel(m)), file("evil/pwned")]),
    ),
    HostileCase(
        "symlink-then-dir-write-through",
        lambda m: build_tar([symlink("evil", str(m)), directory("evil/sub/"), file("evil/sub/pwned")]),
        forbidden=("pwned", "sub"),
    ),
    HostileCase(
        "hardlink-abs",
        lambda m: build_tar([hardlink("hl", f"{m}/secret"), file("hl", PWNED)]),
    ),
    HostileCase(
        "hardlink-dotdot",
        lambda m: build_tar([hardlink("hl", CLIMB + _marker_rel(m) + "/secret"), file("hl", PWNED)]),
    ),
    HostileCase(
        "hardlink-via-symlink",
        lambda m: build_tar([symlink("evil", str(m)), hardlink("hl", "evil/secret")]),
    ),
)

#: Long names that are legitimate: both engines must keep them intact.
GNU_LONG_NAME = "gnu-" + "n" * 150 + "/" + "f" * 120
PAX_LONG_NAME = "pax-" + "p" * 180 + "/" + "q" * 200


def long_name_layer() -> bytes:
    """GNU longname and PAX path entries (> 100 characters), one tar each, concatenated
    into one PAX tar (the GNU entry written with a GNU header)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_info(GNU_LONG_NAME.split("/")[0] + "/", tarfile.DIRTYPE))
        tar.addfile(_info(GNU_LONG_NAME, size=3), io.BytesIO(b"gnu"))
    gnu = buf.getvalue()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info(PAX_LONG_NAME.split("/")[0] + "/", tarfile.DIRTYPE))
        tar.addfile(_info(PAX_LONG_NAME, size=3), io.BytesIO(b"pax"))
    pax = buf.getvalue()
    # A tar ends with two zero blocks; drop the GNU part's end so both parts are one archive.
    gnu_body = _strip_end(gnu)
    return gnu_body + pax


def _strip_end(data: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.getmembers()
        end = tar.offset
    return data[:end]


def several_kb_name_layer(total: int = 5000) -> bytes:
    """One file whose PAX path is ``total`` characters long (beyond PATH_MAX=4096 when
    ``total`` > 4096), made of 200-character components."""
    return build_tar([file(_long_dir(total) + "/deep", b"deep")])


def huge_pax_header_layer(size: int = 2 << 20) -> bytes:
    """A PAX extended header carrying a ``size``-byte path: a resource-exhaustion probe."""
    return build_tar([file("x" * size, b"x")])


def layer_names(layer: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        return tar.getnames()


# --- hostile docker-archives (the outer tar of ``docker load``) -----------------------------


def _archive_entries(archive: bytes) -> list[Entry]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for m in tar.getmembers():
            data = tar.extractfile(m).read() if m.isfile() else b""  # type: ignore[union-attr]
            out.append(Entry(m.name, m.type, data, m.linkname))
    return out


def _manifest_of(entries: list[Entry]) -> list[dict[str, object]]:
    return json.loads(next(e.data for e in entries if e.name == "manifest.json"))  # type: ignore[no-any-return]


def _with_manifest(entries: list[Entry], manifest: list[dict[str, object]]) -> list[Entry]:
    return [e for e in entries if e.name != "manifest.json"] + [
        Entry("manifest.json", data=json.dumps(manifest).encode())
    ]


@dataclass(frozen=True, slots=True)
class HostileLoad:
    """A docker-archive that tries to reach ``marker`` itself (not through a layer).

    ``plant`` writes host files into the marker dir first (what an escape would pick up);
    ``leaked_id`` is the image ID the engine would create if it used a planted config.
    """

    name: str
    build: Callable[[Path, str], bytes]  # (marker, repo:tag) -> archive
    plant: Callable[[Path], None] = lambda m: None
    leaked_id: Callable[[Path], str | None] = lambda m: None


def _benign_layer() -> bytes:
    return build_tar([file("hello", b"hi from the archive\n")])


def _host_layer(m: Path) -> bytes:
    """Unique per marker, so an image made from planted files has an ID no other test makes."""
    return build_tar([file("hello", f"HOST LAYER CONTENT {m.name}\n".encode())])


def _outer_dotdot(m: Path, ref: str) -> bytes:
    entries = _archive_entries(docker_archive(_benign_layer(), ref))
    entries += [file(CLIMB + _marker_rel(m) + "/pwned"), file(f"{m}/pwned2")]
    return build_tar(entries, fmt=tarfile.USTAR_FORMAT)


def _plant_config(m: Path) -> None:
    archive = docker_archive(_host_layer(m), None)
    entries = _archive_entries(archive)
    config_name = str(_manifest_of(entries)[0]["Config"])
    (m / "config.json").write_bytes(next(e.data for e in entries if e.name == config_name))
    (m / "layer.tar").write_bytes(_host_layer(m))


def _planted_id(m: Path) -> str:
    return "sha256:" + hashlib.sha256((m / "config.json").read_bytes()).hexdigest()


def _config_elsewhere(how: str) -> Callable[[Path, str], bytes]:
    def build(m: Path, ref: str) -> bytes:
        entries = _archive_entries(docker_archive(_host_layer(m), ref))
        manifest = _manifest_of(entries)
        config_name = str(manifest[0]["Config"])
        entries = [e for e in entries if e.name != config_name]
        if how == "dotdot":
            manifest[0]["Config"] = CLIMB + _marker_rel(m) + "/config.json"
        elif how == "absolute":
            manifest[0]["Config"] = f"{m}/config.json"
        else:  # a symlink inside the archive pointing at the host file
            entries.append(symlink("cfg.json", f"{m}/config.json"))
            manifest[0]["Config"] = "cfg.json"
        return build_tar(_with_manifest(entries, manifest), fmt=tarfile.USTAR_FORMAT)

    return build


def _layer_elsewhere(how: str) -> Callable[[Path, str], bytes]:
    def build(m: Path, ref: str) -> bytes:
        entries = _archive_entries(docker_archive(_host_layer(m), ref))
        manifest = _manifest_of(entries)
        layer_name = str(manifest[0]["Layers"][0])  # type: ignore[index]
        if how == "symlink":
            entries = [symlink(e.name, f"{m}/layer.tar") if e.name == layer_name else e for e in entries]
        else:
            entries = [e for e in entries if e.name != layer_name]
            manifest[0]["Layers"] = [CLIMB + _marker_rel(m) + "/layer.tar"]
        return build_tar(_with_manifest(entries, manifest), fmt=tarfile.USTAR_FORMAT)

    return build


LOAD_CASES: tuple[HostileLoad, ...] = (
    HostileLoad("outer-dotdot", _outer_dotdot),
    HostileLoad("config-dotdot", _config_elsewhere("dotdot"), _plant_config, _planted_id),
    HostileLoad("config-absolute", _config_elsewhere("absolute"), _plant_config, _planted_id),
    HostileLoad("config-symlink", _config_elsewhere("symlink"), _plant_config, _planted_id),
    HostileLoad("layer-symlink", _layer_elsewhere("symlink"), _plant_config, _planted_id),
    HostileLoad("layer-dotdot", _layer_elsewhere("dotdot"), _plant_config, _planted_id),
)
