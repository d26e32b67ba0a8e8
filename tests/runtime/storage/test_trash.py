from pathlib import Path

from runtime.storage.trash import Trash


def test_discarded_trees_are_gone_after_drain(tmp_path: Path) -> None:
    trash = Trash()
    trees = []
    for i in range(5):
        tree = tmp_path / f"t{i}"
        (tree / "a" / "b").mkdir(parents=True)
        (tree / "a" / "b" / "f").write_bytes(b"x" * 10)
        (tree / "link").symlink_to("/etc")  # never followed
        trees.append(tree)
        trash.discard(tree)
    trash.drain()
    assert not any(t.exists() for t in trees)
    trash.discard(tmp_path / "missing")  # already gone is fine
    trash.drain()
