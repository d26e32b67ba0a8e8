from __future__ import annotations

import json
from pathlib import Path

import pytest

from compat_api.daemon.options import DEFAULT_HOST, OptionsError, parse_options


def _cfg(tmp_path: Path, content: dict[str, object]) -> str:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(content))
    return str(path)


def test_defaults(tmp_path: Path) -> None:
    opts = parse_options(["--config-file", _cfg(tmp_path, {})])
    assert opts.hosts == (DEFAULT_HOST,)
    assert str(opts.data_root) == "/var/lib/pydockerd"
    assert str(opts.exec_root) == "/run/pydockerd"
    assert opts.bridge == "docker0" and opts.bip == "172.17.0.1/16"


def test_flags_and_file_merge(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, {"data-root": "/srv/d", "labels": ["a=b"], "debug": True})
    opts = parse_options(["--config-file", cfg, "-H", "unix:///tmp/x.sock", "-H", "tcp://127.0.0.1:2375"])
    assert opts.hosts == ("unix:///tmp/x.sock", "tcp://127.0.0.1:2375")
    assert str(opts.data_root) == "/srv/d"
    assert opts.labels == ("a=b",)
    assert opts.debug and opts.log_level == "debug"


def test_key_in_both_is_an_error(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, {"data-root": "/srv/d"})
    with pytest.raises(OptionsError, match="specified both as a flag and in the configuration file: data-root"):
        parse_options(["--config-file", cfg, "--data-root", "/srv/e"])


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="don't match any configuration option: colour"):
        parse_options(["--config-file", _cfg(tmp_path, {"colour": "red"})])


def test_explicit_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="no such file or directory"):
        parse_options(["--config-file", str(tmp_path / "nope.json")])


def test_tlsverify_flag_forms(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, {})
    assert parse_options(["--config-file", cfg, "--tlsverify"]).tlsverify is True
    assert parse_options(["--config-file", cfg, "--tls=false"]).tls is False


def test_live_restore_flag_and_file_key(tmp_path: Path) -> None:
    empty = _cfg(tmp_path, {})
    assert parse_options(["--config-file", empty]).live_restore is False
    assert parse_options(["--config-file", empty, "--live-restore"]).live_restore is True
    assert parse_options(["--config-file", empty, "--live-restore=false"]).live_restore is False
    assert parse_options(["--config-file", _cfg(tmp_path, {"live-restore": True})]).live_restore is True
    with pytest.raises(OptionsError, match="live-restore"):
        parse_options(["--config-file", _cfg(tmp_path, {"live-restore": True}), "--live-restore"])
    with pytest.raises(OptionsError, match="invalid value for live-restore"):
        parse_options(["--config-file", _cfg(tmp_path, {"live-restore": "yes"})])


def test_default_cgroupns_mode_flag_and_file_key(tmp_path: Path) -> None:
    empty = _cfg(tmp_path, {})
    assert parse_options(["--config-file", empty]).default_cgroupns_mode == ""
    flag = parse_options(["--config-file", empty, "--default-cgroupns-mode", "private"])
    assert flag.default_cgroupns_mode == "private"
    with pytest.raises(OptionsError, match=r'^Default cgroup namespace mode \(shared\) is '
                                           r'invalid. Use "host" or "private".$'):
        parse_options(["--config-file", empty, "--default-cgroupns-mode", "shared"])
    from_file = _cfg(tmp_path, {"default-cgroupns-mode": "host"})
    assert parse_options(["--config-file", from_file]).default_cgroupns_mode == "host"


def test_exec_opt_cgroup_driver(tmp_path: Path) -> None:
    empty = _cfg(tmp_path, {})
    assert parse_options(["--config-file", empty]).cgroup_driver == ""
    opts = parse_options(["--config-file", empty, "--exec-opt", "native.cgroupdriver=systemd"])
    assert opts.cgroup_driver == "systemd"
    with pytest.raises(OptionsError, match="^native.cgroupdriver option foo not supported$"):
        parse_options(["--config-file", empty, "--exec-opt", "native.cgroupdriver=foo"])
    with pytest.raises(OptionsError, match="^unknown option native.other$"):
        parse_options(["--config-file", empty, "--exec-opt", "native.other=1"])
    from_file = _cfg(tmp_path, {"exec-opts": ["native.cgroupdriver=cgroupfs"]})
    assert parse_options(["--config-file", from_file]).cgroup_driver == "cgroupfs"


def test_init_flags_and_file_keys(tmp_path: Path) -> None:
    empty = _cfg(tmp_path, {})
    default = parse_options(["--config-file", empty])
    assert (default.init, default.init_path) == (False, "")
    flags = parse_options(["--config-file", empty, "--init", "--init-path", "/opt/tini"])
    assert (flags.init, flags.init_path) == (True, "/opt/tini")
    both = parse_options(["--config-file", _cfg(tmp_path, {"init": True, "init-path": "/x/tini"})])
    assert (both.init, both.init_path) == (True, "/x/tini")
    with pytest.raises(OptionsError, match="init-path"):
        parse_options(["--config-file", _cfg(tmp_path, {"init-path": "/a"}), "--init-path", "/b"])


def test_dashboard_flag_and_file_key(tmp_path: Path) -> None:
    empty = _cfg(tmp_path, {})
    assert parse_options(["--config-file", empty]).dashboard is None
    assert parse_options(["--config-file", empty, "--dashboard", "127.0.0.1:2380"]).dashboard == "127.0.0.1:2380"
    assert parse_options(["--config-file", _cfg(tmp_path, {"dashboard": "[::1]:2380"})]).dashboard == "[::1]:2380"


def test_default_bridge_ipv6_options(tmp_path: Path) -> None:
    opts = parse_options(["--config-file", _cfg(tmp_path, {}), "--ipv6", "--fixed-cidr-v6", "fd42:1:2::5/64"])
    assert opts.ipv6 is True and opts.fixed_cidr_v6 == "fd42:1:2::/64"
    opts = parse_options(["--config-file", _cfg(tmp_path, {"ipv6": True, "fixed-cidr-v6": "fd42::/64"})])
    assert opts.ipv6 is True and opts.fixed_cidr_v6 == "fd42::/64"
    assert parse_options(["--config-file", _cfg(tmp_path, {})]).ipv6 is False
    with pytest.raises(OptionsError, match="invalid fixed-cidr-v6: nope"):
        parse_options(["--config-file", _cfg(tmp_path, {}), "--fixed-cidr-v6", "nope"])
