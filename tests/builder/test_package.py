"""The builder package's public surface."""

from __future__ import annotations

import importlib
import pkgutil

import builder


def test_exported_members() -> None:
    assert builder.__all__ == ["BuildOutput", "BuildRequest", "BuildRuntime", "build", "prepare"]
    for name in builder.__all__:
        assert getattr(builder, name) is not None


def test_every_module_exports_what_it_defines() -> None:
    for info in pkgutil.iter_modules(builder.__path__):
        module = importlib.import_module(f"builder.{info.name}")
        exported = getattr(module, "__all__", None)
        assert exported, f"builder.{info.name} has no __all__"
        missing = [name for name in exported if not hasattr(module, name)]
        assert not missing, f"builder.{info.name} exports undefined {missing}"
