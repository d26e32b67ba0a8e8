import os
from pathlib import Path

import pytest

from runtime.system import initbin


def test_parse_version_like_dockerd() -> None:
    assert initbin.parse_version("tini version 0.19.0 - git.de40ad0\n") == ("0.19.0", "de40ad0")
    assert initbin.parse_version("tini version 0.19.0\n") == ("0.19.0", "")  # Debian's build
    assert initbin.parse_version("something else") == ("", "")


def test_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "my-init"
    tool.write_text("#!/bin/sh\necho 'tini version 1.2.3 - git.abc1234'\n")
    tool.chmod(0o755)
    assert initbin.lookup(str(tool)) == str(tool)
    assert initbin.lookup(str(tmp_path / "missing")) is None
    monkeypatch.setenv("PATH", str(tmp_path))
    assert initbin.lookup("my-init") == str(tool)
    assert initbin.lookup("other-init") is None  # a configured name has no fallback
    found = initbin.resolve(str(tool))
    assert (found.name, found.path, found.commit) == (str(tool), str(tool), "abc1234")


@pytest.mark.skipif(not os.access("/usr/bin/tini-static", os.X_OK), reason="needs Debian's tini")
def test_default_falls_back_to_debians_tini(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(initbin, "_LIBEXEC_DIRS", ())
    found = initbin.resolve()
    assert (found.name, found.path) == ("docker-init", "/usr/bin/tini-static")
