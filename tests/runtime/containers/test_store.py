from pathlib import Path

import pytest

from runtime.containers.model import Container, ContainerConfig, HostConfig, RwLayer, new_id
from runtime.containers.store import ContainerStore
from runtime.errors import Conflict, ContainerNotFound, InvalidParameter


def make(store: ContainerStore, name: str, cid: str | None = None) -> Container:
    cid = cid or new_id()
    c = Container(id=cid, name=name, created_ns=1, path="sh", args=("-c", "true"),
                  config=ContainerConfig(image="busybox", cmd=("sh",)),
                  host_config=HostConfig(memory=1 << 20), image_id="sha256:" + "a" * 64,
                  root=store.directory(cid),
                  rw_layer=RwLayer("/u", "/w", ("/l1", "/l2")))
    store.add(c)
    store.save(c)
    return c


def test_lookup_rules(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    a = make(store, "/alpha", "ab" + "0" * 62)
    b = make(store, "/beta", "ac" + "0" * 62)
    assert store.get(a.id) is a
    assert store.get("alpha") is a and store.get("/alpha") is a
    assert store.get("ab") is a and store.get("ac0") is b
    with pytest.raises(InvalidParameter, match="multiple IDs found with provided prefix: a$"):
        store.get("a")
    with pytest.raises(ContainerNotFound, match="^No such container: zz$"):
        store.get("zz")


def test_name_takes_precedence_over_prefix(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    a = make(store, "/x1", "bb" + "1" * 62)
    b = make(store, "/bb", "cc" + "1" * 62)
    assert store.get("bb") is b
    assert store.get("bb1") is a


def test_name_conflict_text(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    a = make(store, "/web")
    with pytest.raises(Conflict) as exc:
        store.reserve_name("/web", new_id())
    assert str(exc.value) == (
        f'Conflict. The container name "/web" is already in use by container "{a.id}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )


def test_persist_and_reload(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    a = make(store, "/persisted")
    a.state.set_running(99, 5)
    a.state.set_stopped(3, 6)
    store.save(a)
    assert (tmp_path / a.id / "config.v2.json").exists()
    assert (tmp_path / a.id / "hostconfig.json").exists()
    again = ContainerStore(tmp_path)
    (loaded,) = again.load()
    assert loaded.id == a.id and loaded.name == "/persisted"
    assert loaded.config == a.config and loaded.host_config == a.host_config
    assert loaded.rw_layer == a.rw_layer
    assert loaded.state.exit_code == 3 and loaded.state.status.value == "exited"
    assert again.get("persisted") is loaded


def test_remove_frees_name_and_dir(tmp_path: Path) -> None:
    store = ContainerStore(tmp_path)
    a = make(store, "/gone")
    store.remove(a)
    assert not (tmp_path / a.id).exists()
    with pytest.raises(ContainerNotFound):
        store.get("gone")
    store.reserve_name("/gone", new_id())


def test_removed_directory_is_deleted_in_the_background_and_swept_at_load(
        tmp_path: Path) -> None:
    from runtime.storage.trash import TRASH

    store = ContainerStore(tmp_path)
    a = make(store, "/bg")
    store.remove(a)
    TRASH.drain()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    # what a crash left between the rename and the deletion goes at the next load
    leftover = tmp_path / f".removing-{new_id()}"
    (leftover / "mounts").mkdir(parents=True)
    (leftover / "config.v2.json").write_text("{}")
    assert ContainerStore(tmp_path).load() == []
    TRASH.drain()
    assert not leftover.exists()
