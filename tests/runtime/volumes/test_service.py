"""The volume service: names, idempotent create, references and the in-use rule, prune,
list filters, usage, events, and errors wrapped as dockerd's OpErr."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runtime.errors import Conflict, InvalidParameter, NotFound
from runtime.events import EventBus
from runtime.filters import Filters
from runtime.volumes.model import ANONYMOUS_LABEL
from runtime.volumes.service import VolumeService


@pytest.fixture
def events() -> EventBus:
    return EventBus()


@pytest.fixture
def service(tmp_path: Path, events: EventBus) -> VolumeService:
    return VolumeService.open(tmp_path / "data", events)


def actions(events: EventBus) -> list[tuple[str, str]]:
    return [(e.action, e.actor_id) for e in events.history() if e.type == "volume"]


def test_create_get_idempotent(service: VolumeService, events: EventBus, tmp_path: Path) -> None:
    vol = service.create("data", labels={"a": "1"})
    assert vol.mountpoint == str(tmp_path / "data" / "volumes" / "data" / "_data")
    assert service.create("data", labels={"b": "2"}, driver_opts={"bogus": "x"}) == vol
    assert service.get("data") == vol
    assert actions(events) == [("create", "data")]
    assert events.history()[0].attributes == {"driver": "local"}


def test_anonymous_volumes(service: VolumeService) -> None:
    vol = service.create(labels={"x": "y"})
    assert re.fullmatch(r"[0-9a-f]{64}", vol.name)
    assert vol.labels == {"x": "y", ANONYMOUS_LABEL: ""} and vol.anonymous


@pytest.mark.parametrize(("kwargs", "category", "message"), [
    ({"name": "a"}, InvalidParameter, "create a: volume name is too short, names should be at "
                                      "least two alphanumeric characters"),
    ({"name": "vv", "driver_opts": {"x": "1"}}, InvalidParameter, 'create vv: invalid option: "x"'),
    ({"name": "vv", "driver": "nfs"}, NotFound,
     'create vv: error looking up volume plugin nfs: plugin "nfs" not found'),
])
def test_create_errors(service: VolumeService, kwargs: dict[str, object],
                       category: type[Exception], message: str) -> None:
    with pytest.raises(category) as err:
        service.create(**kwargs)  # type: ignore[arg-type]
    assert str(err.value) == message
    assert service.list() == []


def test_references_protect_volumes(service: VolumeService, events: EventBus) -> None:
    service.create("shared", reference="c1")
    service.acquire("shared", "c2")
    with pytest.raises(Conflict) as err:
        service.remove("shared", force=True)
    assert str(err.value) == "remove shared: volume is in use - [c1, c2]"
    assert [v.name for v in service.list(Filters.of({"dangling": ["false"]}))] == ["shared"]
    service.release("shared", "c1")
    service.release("shared", "c2")
    assert service.list(Filters.of({"dangling": ["false"]})) == []
    service.remove("shared")
    assert actions(events)[-1] == ("destroy", "shared")
    with pytest.raises(NotFound) as missing:
        service.remove("shared")
    assert str(missing.value) == "get shared: no such volume"
    service.remove("shared", force=True)
    with pytest.raises(NotFound):
        service.acquire("shared", "c1")


def test_prune(service: VolumeService, events: EventBus) -> None:
    anon = service.create()
    Path(anon.mountpoint, "f").write_bytes(b"123456")
    busy = service.create(reference="c1")
    named = service.create("named")
    service.create("opts", driver_opts={"type": "tmpfs", "device": "tmpfs"})
    report = service.prune()
    assert report.deleted == (anon.name,) and report.space_reclaimed == 6
    assert events.history()[-1].action == "prune" and events.history()[-1].actor_id == ""
    assert events.history()[-1].attributes == {"reclaimed": "6"}
    report = service.prune(Filters.of({"all": ["true"]}))
    assert report.deleted == (named.name,)
    assert sorted(v.name for v in service.list()) == sorted([busy.name, "opts"])


def test_usage_skips_volumes_with_options(service: VolumeService) -> None:
    vol = service.create("used", reference="c1")
    Path(vol.mountpoint, "f").write_bytes(b"abc")
    service.create("opts", driver_opts={"type": "tmpfs", "device": "tmpfs"})
    [usage] = service.usage()
    assert (usage.volume.name, usage.size, usage.ref_count) == ("used", 3, 1)


def test_mount_events(service: VolumeService, events: EventBus) -> None:
    vol = service.create("ev")
    assert service.mount("ev", "cid", "/data", False, "") == vol.mountpoint
    service.unmount("ev", "cid")
    mount, unmount = events.history()[-2:]
    assert (mount.action, dict(mount.attributes)) == ("mount", {
        "driver": "local", "container": "cid", "destination": "/data",
        "read/write": "false", "propagation": ""})
    assert (unmount.action, dict(unmount.attributes)) == ("unmount", {
        "driver": "local", "container": "cid"})
    with pytest.raises(NotFound):
        service.mount("nope", "cid", "/x", True)


def test_restart_keeps_volumes(tmp_path: Path, service: VolumeService) -> None:
    service.create("keep", labels={"k": "v"})
    again = VolumeService.open(tmp_path / "data", EventBus())
    assert again.get("keep") == service.get("keep")
