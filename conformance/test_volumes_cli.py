"""Volumes through the stock CLI: ``docker volume create/ls/inspect/rm/prune`` with filters,
labels and local-driver options, and containers using volumes (``-v name:/path``, ``-v
/path``, ``--mount type=volume``, read-only, ``--volumes-from``, copy-up of image content,
``rm -v``/``--rm``), the in-use error, events and ``/system/df``; plus the raw ``/volumes``
answers (status codes, shapes, texts).

Every volume has a unique name and is removed afterwards; prune only ever runs with a
unique label filter (the reference engine is shared).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from conformance.apiversion import APIVersion, negotiated
from conformance.cli import CliDialect, DockerCLI
from conformance.conftest import Advertised
from conformance.containerkit import Box, unique
from conformance.rawhttp import RawHTTP
from conformance.tracker import ResourceTracker

pytestmark = pytest.mark.timeout(120)

ANONYMOUS_LABEL = "com.docker.volume.anonymous"
HEX64 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture
def box(docker_cli: DockerCLI, tracker: ResourceTracker, busybox_image: str) -> Box:
    return Box(docker_cli, tracker, busybox_image)


def new_volume(box: Box, *args: str, name: str | None = None) -> str:
    """``docker volume create [args] NAME`` with a unique, tracked name; returns the name."""
    name = box.tracker.volume(name or unique("vol"))
    assert box.ok("volume", "create", *args, name) == name + "\n"
    return name


def vinspect(box: Box, name: str) -> dict[str, Any]:
    data = json.loads(box.ok("volume", "inspect", name))
    assert isinstance(data, list) and len(data) == 1, data
    result: dict[str, Any] = data[0]
    return result


def ls_names(box: Box, *filters: str) -> list[str]:
    args = [arg for f in filters for arg in ("--filter", f)]
    return box.ok("volume", "ls", "-q", *args).split()


def volume_mount(box: Box, container: str, destination: str) -> dict[str, Any]:
    mounts = [m for m in box.inspect(container)["Mounts"] if m["Destination"] == destination]
    assert len(mounts) == 1, box.inspect(container)["Mounts"]
    result: dict[str, Any] = mounts[0]
    return result


def qjson(value: Any) -> str:
    return quote(json.dumps(value, separators=(",", ":")))


def labels_anonymous(advertised: Advertised) -> bool:
    """Engines of API 1.42 and later (dockerd 23+) label anonymous volumes at creation."""
    return advertised.max >= APIVersion(1, 42)


def prunes_only_anonymous(advertised: Advertised, cli_max_api: str) -> bool:
    """API >= 1.42 (as negotiated by the CLI): prune keeps named volumes unless asked for all."""
    return APIVersion.parse(negotiated(advertised.api_version, cli_max_api)) >= APIVersion(1, 42)


# -- docker volume create / inspect / ls / rm --------------------------------------------


def test_create_inspect_ls_rm(box: Box, cli_dialect: CliDialect) -> None:
    name = new_volume(box, "--label", "conf.vol=yes", "--label", "tier")
    info = vinspect(box, name)
    assert info["Name"] == name and info["Driver"] == "local" and info["Scope"] == "local"
    assert info["Labels"] == {"conf.vol": "yes", "tier": ""}
    assert info["Options"] in (None, {})
    assert info["Mountpoint"].endswith(f"/volumes/{name}/_data")
    created = datetime.fromisoformat(info["CreatedAt"].replace("Z", "+00:00"))
    assert abs(created.timestamp() - time.time()) < 120
    assert ls_names(box, f"name={name}") == [name]
    table = box.ok("volume", "ls", "--filter", f"name={name}")
    assert re.search(rf"^local\s+{re.escape(name)}$", table, re.M), table
    assert box.ok("volume", "rm", name) == name + "\n"
    expected = cli_dialect.not_found(f"get {name}: no such volume", "volume", name)
    gone = box.cli("volume", "inspect", name)
    assert gone.returncode != 0 and expected in str(gone.stderr)
    again = box.cli("volume", "rm", name)
    assert again.returncode != 0 and expected in str(again.stderr)
    assert box.cli("volume", "rm", "-f", name).returncode == 0


def test_create_without_name_and_idempotent_create(box: Box, advertised: Advertised) -> None:
    generated = box.ok("volume", "create").strip()
    box.tracker.volume(generated)
    assert HEX64.match(generated), generated
    if labels_anonymous(advertised):
        assert vinspect(box, generated)["Labels"] == {ANONYMOUS_LABEL: ""}
    name = new_volume(box, "--label", "first=1")
    # an existing name is returned unchanged: the new labels are ignored
    assert box.ok("volume", "create", "--label", "second=2", name) == name + "\n"
    assert vinspect(box, name)["Labels"] == {"first": "1"}


@pytest.mark.parametrize(("args", "message"), [
    (["a"], 'create a: volume name is too short, names should be at least two alphanumeric '
            'characters'),
    (["bad/name"], 'create bad/name: "bad/name" includes invalid characters for a local volume '
                   'name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to '
                   'pass a host directory, use absolute path'),
    (["-o", "foo=bar", "NAME"], 'create NAME: invalid option: "foo"'),
    (["-o", "type=tmpfs", "NAME"], 'create NAME: missing required option: "device"'),
    (["-o", "device=/x", "NAME"], 'create NAME: missing required option: "type"'),
    (["-d", "nosuchdriver", "NAME"], 'create NAME: error looking up volume plugin '
                                      'nosuchdriver: plugin "nosuchdriver" not found'),
])
def test_create_errors(box: Box, args: list[str], message: str) -> None:
    name = box.tracker.volume(unique("volbad"))
    args = [name if a == "NAME" else a for a in args]
    proc = box.cli("volume", "create", *args)
    assert proc.returncode != 0
    assert message.replace("NAME", name) in str(proc.stderr), proc.stderr


def test_ls_filters(box: Box) -> None:
    label = f"conf.ls.{uuid.uuid4().hex[:8]}"
    free = new_volume(box, "--label", f"{label}=a")
    used = new_volume(box, "--label", f"{label}=b")
    box.run_d("-v", f"{used}:/data", box.image, "sleep", "60")
    assert sorted(ls_names(box, f"label={label}")) == sorted([free, used])
    assert ls_names(box, f"label={label}=b") == [used]
    assert ls_names(box, f"label={label}", "dangling=true") == [free]
    assert ls_names(box, f"label={label}", "dangling=false") == [used]
    assert ls_names(box, f"label={label}", "driver=local", f"name={free}") == [free]
    # name is also a regular expression searched in the name
    prefix = free.split("-")[0]
    assert free in ls_names(box, f"name=^{prefix}-", f"label={label}")
    assert ls_names(box, f"label={label}", "driver=nosuchdriver") == []
    bad = box.cli("volume", "ls", "--filter", "nope=1")
    assert bad.returncode != 0 and "invalid filter 'nope'" in str(bad.stderr).lower()
    bad = box.cli("volume", "ls", "--filter", "dangling=maybe")
    assert bad.returncode != 0 and "invalid filter 'dangling=[maybe]'" in str(bad.stderr).lower()


def test_local_driver_tmpfs_options(box: Box) -> None:
    name = new_volume(box, "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m,mode=1777")
    assert vinspect(box, name)["Options"] == {"type": "tmpfs", "device": "tmpfs",
                                              "o": "size=2m,mode=1777"}
    proc = box.run("--rm", "-v", f"{name}:/t", box.image, "sh", "-c",
                   "grep ' /t ' /proc/mounts; echo hi > /t/f && cat /t/f")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^tmpfs /t tmpfs rw,.*size=2048k", proc.stdout, re.M), proc.stdout
    assert proc.stdout.endswith("hi\n")


# -- containers using volumes -------------------------------------------------------------


def test_named_volume_persists_between_containers(box: Box) -> None:
    name = new_volume(box)
    proc = box.run("--rm", "-v", f"{name}:/data", box.image, "sh", "-c",
                   "echo persisted > /data/file")
    assert proc.returncode == 0, proc.stderr
    proc = box.run("--rm", "-v", f"{name}:/elsewhere", box.image, "cat", "/elsewhere/file")
    assert proc.returncode == 0 and proc.stdout == "persisted\n", proc.stderr


def test_run_creates_missing_named_volume_and_inspect_mounts(box: Box) -> None:
    name = box.tracker.volume(unique("vol"))
    container = box.run_d("-v", f"{name}:/data", "-v", f"{name}:/again:ro", box.image,
                          "sleep", "60")
    info = vinspect(box, name)
    assert volume_mount(box, container, "/data") == {
        "Type": "volume", "Name": name, "Source": info["Mountpoint"], "Destination": "/data",
        "Driver": "local", "Mode": "z", "RW": True, "Propagation": "",
    }
    ro = volume_mount(box, container, "/again")
    assert ro["Mode"] == "ro" and ro["RW"] is False and ro["Name"] == name
    # the CLI collects -v values in a Go map, so their order on the wire varies
    assert sorted(box.inspect(container)["HostConfig"]["Binds"]) == sorted([f"{name}:/data", f"{name}:/again:ro"])


def test_read_only_volume(box: Box) -> None:
    name = new_volume(box)
    proc = box.run("--rm", "-v", f"{name}:/data:ro", box.image, "touch", "/data/x")
    assert proc.returncode != 0 and "Read-only file system" in proc.stderr


def test_anonymous_volume_and_rm_v(box: Box, advertised: Advertised) -> None:
    keep = box.run_d("-v", "/anon", box.image, "true")
    drop = box.run_d("-v", "/anon", box.image, "true")
    kept, dropped = (volume_mount(box, c, "/anon") for c in (keep, drop))
    for mount in (kept, dropped):
        assert HEX64.match(mount["Name"]) and mount["Mode"] == "" and mount["RW"] is True
        box.tracker.volume(mount["Name"])
    if labels_anonymous(advertised):
        assert vinspect(box, kept["Name"])["Labels"] == {ANONYMOUS_LABEL: ""}
    box.wait_exited(keep)
    box.wait_exited(drop)
    in_use = box.cli("volume", "rm", kept["Name"])
    assert in_use.returncode != 0 and "volume is in use" in str(in_use.stderr)
    box.ok("rm", keep)
    box.ok("rm", "-v", drop)
    assert vinspect(box, kept["Name"])["Name"] == kept["Name"]  # plain rm keeps it
    assert box.cli("volume", "inspect", dropped["Name"]).returncode != 0


def test_run_rm_removes_anonymous_volumes_only(box: Box, tmp_path: Path) -> None:
    named = box.tracker.volume(unique("vol"))
    cidfile = tmp_path / "cid"
    since = str(int(time.time()) - 1)
    proc = box.run("--rm", "--cidfile", str(cidfile), "-v", f"{named}:/named", "-v", "/anon",
                   "--mount", "type=volume,dst=/anon2", box.image, "true")
    assert proc.returncode == 0, proc.stderr
    cid = cidfile.read_text().strip()
    until = str(int(time.time()) + 1)
    time.sleep(1.1)
    out = box.ok("events", "--since", since, "--until", until, "--filter", "type=volume",
                 "--filter", "event=mount", "--format", "{{json .}}")
    mounted = {e["Actor"]["Attributes"]["destination"]: e["Actor"]["ID"]
               for e in map(json.loads, out.split("\n")[:-1])
               if e["Actor"]["Attributes"]["container"] == cid}
    assert set(mounted) == {"/named", "/anon", "/anon2"} and mounted["/named"] == named
    for destination in ("/anon", "/anon2"):
        box.tracker.volume(mounted[destination])
        assert box.cli("volume", "inspect", mounted[destination]).returncode != 0
    assert vinspect(box, named)["Name"] == named


def test_mount_flag_volume_options(box: Box) -> None:
    name = box.tracker.volume(unique("vol"))
    container = box.run_d("--mount", f"type=volume,src={name},dst=/m,readonly",
                          "--mount", "type=volume,dst=/anon", box.image, "sleep", "60")
    ro = volume_mount(box, container, "/m")
    assert (ro["Type"], ro["Name"], ro["RW"], ro["Mode"], ro["Driver"]) == (
        "volume", name, False, "z", "local")
    anon = volume_mount(box, container, "/anon")
    box.tracker.volume(anon["Name"])
    assert HEX64.match(anon["Name"]) and anon["RW"] is True
    proc = box.cli("exec", container, "touch", "/m/x")
    assert proc.returncode != 0 and "Read-only file system" in str(proc.stderr)
    labelled = box.tracker.volume(unique("vol"))
    proc = box.run("--rm", "--mount",
                   f"type=volume,src={labelled},dst=/l,volume-label=conf.mount=1", box.image,
                   "true")
    assert proc.returncode == 0, proc.stderr
    assert vinspect(box, labelled)["Labels"] == {"conf.mount": "1"}


def test_copy_up_of_image_content(box: Box) -> None:
    builder = box.name("mk")
    script = ("mkdir -p /data/sub && echo image-data > /data/sub/f && ln -s sub/f /data/link"
              " && chown -R 1000:1001 /data && chmod 750 /data")
    proc = box.run("--name", builder, box.image, "sh", "-c", script)
    assert proc.returncode == 0, proc.stderr
    image = box.tracker.image(unique("volimg").lower())
    box.ok("commit", "-c", "VOLUME /data", builder, image)
    show = "stat -c '%u:%g %a' /data; cat /data/sub/f /data/link; ls /data"
    # image VOLUME -> anonymous volume with the image's content and the directory's metadata
    anon_user = box.name()
    proc = box.run("--name", anon_user, image, "sh", "-c", show)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "1000:1001 750\nimage-data\nimage-data\nlink\nsub\n"
    mount = volume_mount(box, anon_user, "/data")
    box.tracker.volume(mount["Name"])
    assert mount["Type"] == "volume" and HEX64.match(mount["Name"])
    # a new named volume is populated too; nocopy leaves it empty
    fresh = box.tracker.volume(unique("vol"))
    proc = box.run("--rm", "-v", f"{fresh}:/data", image, "sh", "-c", show)
    assert proc.stdout == "1000:1001 750\nimage-data\nimage-data\nlink\nsub\n", proc.stderr
    empty = box.tracker.volume(unique("vol"))
    proc = box.run("--rm", "-v", f"{empty}:/data:nocopy", image, "ls", "-A", "/data")
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr
    # a volume that has content is never overwritten
    proc = box.run("--rm", "-v", f"{fresh}:/data", image, "sh", "-c",
                   "rm /data/link && echo mine > /data/mine")
    assert proc.returncode == 0, proc.stderr
    proc = box.run("--rm", "-v", f"{fresh}:/data", image, "ls", "/data")
    assert proc.stdout == "mine\nsub\n", proc.stdout


def test_volumes_from(box: Box) -> None:
    named = box.tracker.volume(unique("vol"))
    source = box.run_d("-v", f"{named}:/shared", "-v", "/anon", box.image, "sh", "-c",
                       "echo from-source > /shared/f; echo a > /anon/f; sleep 60")
    anon = volume_mount(box, source, "/anon")["Name"]
    box.tracker.volume(anon)
    deadline = time.monotonic() + 10
    while box.cli("exec", source, "test", "-f", "/anon/f").returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    reader = box.name()
    proc = box.run("--name", reader, "--volumes-from", f"{source}:ro", box.image, "sh", "-c",
                   "cat /shared/f /anon/f; touch /shared/x")
    assert proc.stdout == "from-source\na\n" and "Read-only file system" in proc.stderr
    inherited = volume_mount(box, reader, "/shared")
    assert (inherited["Name"], inherited["RW"], inherited["Mode"]) == (named, False, "")
    assert volume_mount(box, reader, "/anon")["Name"] == anon
    # removing the reader with -v leaves the source's volumes alone (still in use / named)
    box.ok("rm", "-v", reader)
    assert vinspect(box, anon)["Name"] == anon and vinspect(box, named)["Name"] == named


def test_remove_in_use_volume(box: Box) -> None:
    name = new_volume(box)
    container = box.run_d("-v", f"{name}:/data", box.image, "true")
    box.wait_exited(container)
    cid = box.inspect(container)["Id"]
    for args in (("volume", "rm", name), ("volume", "rm", "-f", name)):
        proc = box.cli(*args)
        assert proc.returncode != 0
        assert f"remove {name}: volume is in use - [{cid}]" in str(proc.stderr), proc.stderr
    box.ok("rm", container)
    assert box.ok("volume", "rm", name) == name + "\n"


def test_prune_with_label_filter(box: Box, advertised: Advertised, cli_max_api: str) -> None:
    label = f"conf.prune.{uuid.uuid4().hex[:8]}"
    named = new_volume(box, "--label", label)
    busy = new_volume(box, "--label", label)
    anonymous = box.ok("volume", "create", "--label", label).strip()
    box.tracker.volume(anonymous)
    with_data = box.run("--rm", "-v", f"{anonymous}:/d", box.image, "sh", "-c",
                        "printf 12345 > /d/f")
    assert with_data.returncode == 0, with_data.stderr
    box.run_d("-v", f"{busy}:/data", box.image, "sleep", "60")
    out = box.ok("volume", "prune", "-f", "--filter", f"label={label}")
    assert anonymous in out.split()
    assert re.search(r"Total reclaimed space: 5B", out), out
    left = set(ls_names(box, f"label={label}"))
    if prunes_only_anonymous(advertised, cli_max_api):
        assert left == {named, busy}
        out = box.ok("volume", "prune", "-f", "--all", "--filter", f"label={label}")
        assert named in out.split() and busy not in out.split()
    assert set(ls_names(box, f"label={label}")) == {busy}


def test_events_of_a_volume(box: Box) -> None:
    name = box.tracker.volume(unique("vol"))
    since = str(int(time.time()) - 1)
    container = box.name()
    proc = box.run("--name", container, "-v", f"{name}:/data", box.image, "true")
    assert proc.returncode == 0, proc.stderr
    cid = box.inspect(container)["Id"]
    box.ok("rm", container)
    box.ok("volume", "rm", name)
    until = str(int(time.time()) + 1)
    time.sleep(1.1)
    out = box.ok("events", "--since", since, "--until", until, "--filter", f"volume={name}",
                 "--format", "{{json .}}")
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [e["Action"] for e in events] == ["create", "mount", "unmount", "destroy"], events
    assert all(e["Type"] == "volume" and e["Actor"]["ID"] == name for e in events)
    mount = events[1]["Actor"]["Attributes"]
    assert mount == {"container": cid, "destination": "/data", "driver": "local",
                     "propagation": "", "read/write": "true"}
    assert events[2]["Actor"]["Attributes"] == {"container": cid, "driver": "local"}


def test_system_df_reports_volume_usage(box: Box, raw: RawHTTP) -> None:
    name = new_volume(box)
    box.run_d("-v", f"{name}:/data", box.image, "sh", "-c", "printf 1234567 > /data/f")
    deadline = time.monotonic() + 10
    while True:
        entries = [v for v in raw.get("/system/df").json()["Volumes"] or [] if v["Name"] == name]
        assert len(entries) == 1
        if entries[0]["UsageData"]["Size"] == 7 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert entries[0]["UsageData"] == {"RefCount": 1, "Size": 7}
    assert entries[0]["Driver"] == "local"


# -- the raw API ---------------------------------------------------------------------------


def test_raw_volume_endpoints(raw: RawHTTP, tracker: ResourceTracker,
                              advertised: Advertised) -> None:
    name = tracker.volume(unique("rawvol"))
    resp = raw.post("/volumes/create", json_body={"Name": name, "Labels": {"x": "y"}})
    assert resp.status == 201, resp.describe()
    body = resp.json()
    assert set(body) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options",
                         "Scope"}
    assert (body["Name"], body["Labels"], body["Options"]) == (name, {"x": "y"}, None)
    again = raw.post("/volumes/create", json_body={"Name": name})
    assert again.status == 201 and again.json() == body
    assert raw.get(f"/volumes/{name}").json() == body
    listed = raw.get("/volumes?filters=" + qjson({"name": [name]}))
    assert listed.status == 200
    assert listed.json() == {"Volumes": [body], "Warnings": None}
    missing = unique("rawmissing")
    for resp in (raw.get(f"/volumes/{missing}"), raw.delete(f"/volumes/{missing}")):
        assert resp.status == 404 and resp.error_message() == f"get {missing}: no such volume"
    assert raw.delete(f"/volumes/{missing}?force=1").status == 204
    bad = raw.get("/volumes?filters=" + qjson({"nope": ["1"]}))
    assert bad.status == 400 and bad.error_message().lower() == "invalid filter 'nope'"
    bad = raw.post("/volumes/create", json_body={"Name": "x"})
    assert bad.status == 400 and "volume name is too short" in bad.error_message()
    old = raw.request("PUT", f"/v1.41/volumes/{name}?version=1", json_body={})
    assert old.status == 404 and old.error_message() == "page not found"
    if advertised.max >= APIVersion(1, 42):
        update = raw.request("PUT", f"/volumes/{name}?version=1", json_body={})
        assert update.status == 503
        assert update.error_message() == ("volume update only valid for cluster volumes, but "
                                          "swarm is unavailable")
    label = f"conf.raw.{uuid.uuid4().hex[:8]}"
    pruned = raw.post("/volumes/prune?filters=" + qjson({"label": [label]}))
    assert pruned.status == 200 and pruned.json() == {"VolumesDeleted": [], "SpaceReclaimed": 0}
    assert raw.delete(f"/volumes/{name}").status == 204
