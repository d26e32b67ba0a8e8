"""``docker cp`` and the archive endpoints (HEAD/GET/PUT ``/containers/{id}/archive``).

Both directions through the stock CLI (files, directories, symlinks, stopped and running
containers), the ``X-Docker-Container-Path-Stat`` header and error answers on the raw
socket, and hostile archives: whatever a tar or a container process tries, nothing may be
written or read outside the container (a marker directory on the host must stay as it was).
"""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import CliDialect, DockerCLI
from conformance.containerkit import Box
from conformance.rawhttp import RawHTTP, RawResponse
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(120)

GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


@pytest.fixture
def marker() -> Iterator[Path]:
    """A host directory no archive operation may touch (checked after each hostile test)."""
    path = Path("/tmp") / f"cp-marker-{uuid.uuid4().hex[:10]}"
    path.mkdir()
    (path / "secret").write_text("host secret\n")
    yield path
    for child in sorted(path.rglob("*"), reverse=True):
        child.unlink() if not child.is_dir() or child.is_symlink() else child.rmdir()
    path.rmdir()


def _assert_untouched(marker: Path) -> None:
    assert sorted(p.name for p in marker.iterdir()) == ["secret"], list(marker.iterdir())
    assert (marker / "secret").read_text() == "host secret\n"


def _stat(resp: RawResponse) -> dict[str, Any]:
    header = resp.header("X-Docker-Container-Path-Stat")
    assert header, resp.describe()
    value: dict[str, Any] = json.loads(base64.b64decode(header))
    return value


def _tar(*members: tuple[str, str, str]) -> bytes:
    """(name, kind, data-or-linkname) -> an uncompressed tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = value.encode()
                info.size = len(data)
                info.mode = 0o644
                t.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
                         "link": tarfile.LNKTYPE}[kind]
            info.mode = 0o755 if kind == "dir" else 0o777
            info.linkname = value
            t.addfile(info)
    return buf.getvalue()


def _put(raw: RawHTTP, name: str, path: str, body: bytes, query: str = "") -> RawResponse:
    return raw.request("PUT", f"/containers/{name}/archive?path={path}{query}", body=body,
                       headers={"Content-Type": "application/x-tar"})


def _tree(root: Path) -> dict[str, str]:
    """relative path -> 'dir' / 'link:<target>' / 'file:<mode>:<content>'."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = f"file:{oct(path.stat().st_mode & 0o777)}:{path.read_text()}"
    return out


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.txt").write_text("beta\n")
    (src / "sub" / "deeper" / "c.sh").write_text("#!/bin/sh\n")
    (src / "sub" / "deeper" / "c.sh").chmod(0o750)
    os.symlink("a.txt", src / "link-to-a")
    os.symlink("/etc/hostname", src / "abs-link")
    return src


def test_cp_directory_roundtrip_running(box: Box, tmp_path: Path) -> None:
    name = box.run_d(box.image, "sleep", "300")
    src = _source(tmp_path)
    box.ok("cp", str(src), f"{name}:/tmp/")
    listing = box.ok("exec", name, "sh", "-c", "cd /tmp/src && find . | sort && cat sub/b.txt "
                     "&& readlink link-to-a && stat -c %a sub/deeper/c.sh")
    assert listing.split() == [".", "./a.txt", "./abs-link", "./link-to-a", "./sub",
                               "./sub/b.txt", "./sub/deeper", "./sub/deeper/c.sh",
                               "beta", "a.txt", "750"]
    out = tmp_path / "out"
    out.mkdir()
    box.ok("cp", f"{name}:/tmp/src", str(out))
    assert _tree(out / "src") == _tree(src)
    # into an existing directory with a trailing "/." copies the content, not the directory
    box.ok("exec", name, "mkdir", "/merge")
    box.ok("cp", f"{src}/.", f"{name}:/merge")
    assert box.ok("exec", name, "cat", "/merge/a.txt") == "alpha\n"


def test_cp_single_file_rename_and_stdout(box: Box, tmp_path: Path, cli_dialect: CliDialect) -> None:
    name = box.run_d(box.image, "sleep", "300")
    (tmp_path / "f").write_text("payload\n")
    box.ok("cp", str(tmp_path / "f"), f"{name}:/tmp/renamed")
    assert box.ok("exec", name, "cat", "/tmp/renamed") == "payload\n"
    proc = box.cli("cp", f"{name}:/etc/hostname", "-", input=b"", timeout=30)
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as t:
        members = t.getmembers()
        assert [m.name for m in members] == ["hostname"]
        data = t.extractfile(members[0])
        assert data is not None and data.read().strip() == box.inspect(name)["Config"][
            "Hostname"].encode()
    proc = box.cli("cp", f"{name}:/no/such/file", str(tmp_path / "x"))
    assert proc.returncode != 0
    if cli_dialect.legacy:
        assert f"Error: No such container:path: {name}:/no/such/file" in proc.stderr
    else:
        assert "Could not find the file /no/such/file in container " + name in proc.stderr


def test_cp_stopped_container_both_ways(box: Box, tmp_path: Path) -> None:
    name = box.name()
    box.ok("create", "--name", name, "--network", "none", box.image, "cat", "/in.txt")
    (tmp_path / "in.txt").write_text("from the host\n")
    box.ok("cp", str(tmp_path / "in.txt"), f"{name}:/")
    proc = box.cli("cp", str(tmp_path / "in.txt"), f"{name}:/no-such-dir/")
    assert proc.returncode != 0  # a destination ending in "/" must exist
    out = tmp_path / "back.txt"
    box.ok("cp", f"{name}:/in.txt", str(out))
    assert out.read_text() == "from the host\n"
    box.ok("cp", f"{name}:/etc", str(tmp_path / "etc"))
    assert (tmp_path / "etc" / "passwd").read_text().startswith("root:")
    # what was copied in while stopped is there once the container runs
    assert box.ok("start", "-a", name) == "from the host\n"


def test_cp_symlinks_copy_or_follow(box: Box, tmp_path: Path) -> None:
    name = box.run_d(box.image, "sleep", "300")
    box.ok("exec", name, "sh", "-c", "mkdir /d && echo hi > /d/f && ln -s /d /dl "
           "&& ln -s f /d/fl")
    box.ok("cp", f"{name}:/dl", str(tmp_path / "as-link"))
    assert os.readlink(tmp_path / "as-link") == "/d"
    box.ok("cp", "-L", f"{name}:/dl", str(tmp_path / "followed"))
    assert (tmp_path / "followed" / "f").read_text() == "hi\n"
    box.ok("cp", f"{name}:/dl/", str(tmp_path / "through-slash"))
    assert sorted(os.listdir(tmp_path / "through-slash")) == ["f", "fl"]
    # a host directory copied onto a container symlink to a directory lands behind the link
    (tmp_path / "up").write_text("up\n")
    box.ok("cp", str(tmp_path / "up"), f"{name}:/dl")
    assert box.ok("exec", name, "cat", "/d/up") == "up\n"


def test_archive_head_stat_header(box: Box, raw: RawHTTP) -> None:
    name = box.run_d(box.image, "sleep", "300")
    box.ok("exec", name, "sh", "-c", "mkdir -p /d && printf 12345 > /d/f && ln -s /d /dl "
           "&& ln -s ../../nowhere /d/dangling")
    f = raw.head(f"/containers/{name}/archive?path=/d/f")
    assert f.status == 200, f.describe()
    stat = _stat(f)
    assert (stat["name"], stat["size"], stat["mode"], stat["linkTarget"]) == ("f", 5, 0o644, "")
    assert stat["mtime"].endswith("Z") and stat["mtime"][:4].isdigit()
    d = _stat(raw.head(f"/containers/{name}/archive?path=/d/"))
    assert (d["name"], d["mode"]) == ("d", GO_MODE_DIR | 0o755)
    link = _stat(raw.head(f"/containers/{name}/archive?path=/dl"))
    assert (link["name"], link["mode"], link["linkTarget"]) == ("dl", GO_MODE_SYMLINK | 0o777, "/d")
    followed = _stat(raw.head(f"/containers/{name}/archive?path=/dl/"))
    assert (followed["name"], followed["mode"] & GO_MODE_DIR) == ("dl", GO_MODE_DIR)
    # links are resolved inside the container: ../.. stops at its root
    dangling = _stat(raw.head(f"/containers/{name}/archive?path=/d/dangling"))
    assert dangling["linkTarget"] == "/nowhere"
    assert _stat(raw.head(f"/containers/{name}/archive?path=/"))["name"] == "/"
    missing = raw.get(f"/containers/{name}/archive?path=/nope")
    assert missing.status == 404
    assert missing.error_message() == f"Could not find the file /nope in container {name}"
    assert raw.head(f"/containers/{name}/archive?path=/nope").status == 404
    empty = raw.get(f"/containers/{name}/archive")
    assert empty.status == 400 and "path" in empty.error_message()
    gone = raw.get("/containers/no-such-container-xyz/archive?path=/")
    assert gone.status == 404
    assert gone.error_message() == "No such container: no-such-container-xyz"


def test_archive_get_member_names(box: Box, raw: RawHTTP) -> None:
    name = box.run_d(box.image, "sleep", "300")
    box.ok("exec", name, "sh", "-c", "mkdir -p /d/sub && echo x > /d/f && ln -s /d /dl")

    def names(path: str) -> list[str]:
        resp = raw.get(f"/containers/{name}/archive?path={path}")
        assert resp.status == 200, resp.describe()
        assert resp.header("Content-Type") == "application/x-tar"
        with tarfile.open(fileobj=io.BytesIO(resp.body)) as t:
            return [m.name for m in t.getmembers()]

    assert names("/d") == ["d", "d/f", "d/sub"]
    assert names("/d/.") == [".", "./f", "./sub"]
    assert names("/dl") == ["dl"]
    assert names("/dl/") == ["dl", "dl/f", "dl/sub"]
    assert names("/d/f") == ["f"]


def test_archive_put_errors(box: Box, raw: RawHTTP) -> None:
    name = box.run_d(box.image, "sleep", "300")
    box.ok("exec", name, "sh", "-c", "echo x > /file && mkdir /dir")
    payload = _tar(("new.txt", "file", "n\n"))
    missing = _put(raw, name, "/no/such/dir", payload)
    assert missing.status == 404
    assert missing.error_message() == f"Could not find the file /no/such/dir in container {name}"
    not_dir = _put(raw, name, "/file", payload)
    # 20.10 answers 500, later releases 400 (errdefs.InvalidParameter)
    assert not_dir.status in (400, 500)
    assert not_dir.error_message() == "extraction point is not a directory"
    assert _put(raw, name, "", payload).status == 400
    clash = _put(raw, name, "/", _tar(("dir", "file", "x")), "&noOverwriteDirNonDir=true")
    assert clash.status == 500
    assert "cannot overwrite directory" in clash.error_message()
    assert _put(raw, name, "/dir", payload).status == 200
    assert box.ok("exec", name, "cat", "/dir/new.txt") == "n\n"


def test_archive_put_read_only_rootfs(box: Box, raw: RawHTTP) -> None:
    name = box.run_d("--read-only", box.image, "sleep", "300")
    resp = _put(raw, name, "/tmp", _tar(("x", "file", "x")))
    assert resp.status in (400, 500)
    assert resp.error_message() == "container rootfs is marked read-only"


def test_archive_put_hostile_members_stay_inside(box: Box, raw: RawHTTP, marker: Path) -> None:
    name = box.run_d(box.image, "sleep", "300")
    box.ok("exec", name, "mkdir", "-p", "/t1", "/t2", "/t3", "/t4", "/t5")
    up = "../" * 12
    escape = f"{up}{str(marker).lstrip('/')}/pwned"
    # "../" climbing out of the destination: dockerd refuses
    dotdot = _put(raw, name, "/t1", _tar((escape, "file", "x")))
    assert dotdot.status == 500 and "is outside of" in dotdot.error_message()
    # an absolute member name is relative to the destination
    assert _put(raw, name, "/t2", _tar((f"{marker}/abs", "file", "x"))).status == 200
    assert box.ok("exec", name, "cat", f"/t2{marker}/abs") == "x"
    # a relative symlink out of the destination: refused
    sym = _put(raw, name, "/t3", _tar(("l", "sym", up), ("l/" + str(marker).lstrip("/")
                                                            + "/viasym", "file", "x")))
    assert sym.status == 500 and "invalid symlink" in sym.error_message()
    # an absolute symlink is followed, but only inside the container
    put = _put(raw, name, "/t4", _tar(("root", "sym", "/"),
                                      (f"root{marker}/viaabs", "file", "x")))
    assert put.status == 200, put.describe()
    found = box.ok("exec", name, "sh", "-c", f"ls /t4{marker}/viaabs {marker}/viaabs 2>/dev/null"
                   " || true")
    assert "viaabs" in found  # written in the container (dockerd: at its root; here: below /t4)
    hard = _put(raw, name, "/t5", _tar(("h", "link", f"{up}etc/passwd")))
    assert hard.status == 500 and "invalid hardlink" in hard.error_message()
    _assert_untouched(marker)


def test_archive_symlink_swap_race_stays_inside(box: Box, raw: RawHTTP, marker: Path) -> None:
    """CVE-2018-15664: a container swaps a directory for a symlink to / while cp runs."""
    name = box.run_d(box.image, "sh", "-c",
                     "mkdir -p /x; while true; do mkdir -p /x/w; rm -rf /x/w; "
                     "ln -s / /x/w; rm -f /x/w; done")
    target = f"w{marker}"
    payload = _tar((f"{target}/pwned", "file", "x"))
    stop = threading.Event()
    leaked: list[bytes] = []

    def reader() -> None:
        while not stop.is_set():
            resp = raw.get(f"/containers/{name}/archive?path=/x/{target}/secret")
            if resp.status == 200 and b"host secret" in resp.body:
                leaked.append(resp.body)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            _put(raw, name, "/x", payload)
    finally:
        stop.set()
        thread.join()
    assert not leaked, "a host file was read through the container"
    _assert_untouched(marker)


def test_export(box: Box, tmp_path: Path) -> None:
    name = box.name()
    box.run("--name", name, box.image, "sh", "-c", "echo data > /newfile && rm /bin/ls")
    proc = box.cli("export", name, input=b"", timeout=60)
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as t:
        members = {m.name: m for m in t.getmembers()}
        newfile = t.extractfile(members["newfile"])
        assert newfile is not None and newfile.read() == b"data\n"
    assert "bin/busybox" in members and "bin/ls" not in members
    assert not any(n.startswith("/") or n.startswith("./") for n in members)
    running = box.run_d(box.image, "sleep", "300")
    out = tmp_path / "running.tar"
    box.ok("export", "-o", str(out), running)
    with tarfile.open(out) as t:
        names = t.getnames()
    assert "bin/busybox" in names
    # kernel file systems are not part of the export
    assert not any(n.startswith(("proc/", "sys/")) and n not in ("proc/", "sys/") for n in names)


def test_cp_into_the_volume_of_a_stopped_container(box: Box, tmp_path: Path,
                                                   tracker: ResourceTracker) -> None:
    """The usual way to seed a volume: create a container, docker cp into its volume."""
    volume = tracker.volume(f"cpvol-{uuid.uuid4().hex[:10]}")
    seeder = box.name()
    box.ok("create", "--name", seeder, "--network", "none", "-v", f"{volume}:/data", box.image,
           "true")
    (tmp_path / "seed.txt").write_text("seeded\n")
    box.ok("cp", str(tmp_path / "seed.txt"), f"{seeder}:/data/")
    reader = box.name()
    out = box.run("--name", reader, "-v", f"{volume}:/v", box.image, "cat", "/v/seed.txt")
    assert out.returncode == 0 and out.stdout == "seeded\n", out.stderr
    # and back out of the stopped container, through the volume
    box.ok("cp", f"{seeder}:/data/seed.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "seeded\n"


def test_cp_archive_mode_owner(box: Box, tmp_path: Path) -> None:
    """``docker cp -a`` (copyUIDGID): files belong to the container's user. (dockerd 20.10
    looks the name up on the host, so the user must exist in both: nobody does.)"""
    name = box.run_d("--user", "nobody", box.image, "sleep", "300")
    (tmp_path / "owned").write_text("x")
    os.chown(tmp_path / "owned", 777, 778)
    box.ok("cp", "-a", str(tmp_path / "owned"), f"{name}:/tmp/")
    box.ok("cp", str(tmp_path / "owned"), f"{name}:/tmp/kept")
    assert box.ok("exec", name, "stat", "-c", "%u:%g", "/tmp/owned", "/tmp/kept").split() == [
        "65534:65534", "777:778"]
