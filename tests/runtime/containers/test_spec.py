from pathlib import Path

import pytest

from runtime.containers.model import (
    Container, ContainerConfig, HostConfig, MountRequest, RwLayer, TmpfsOptions, Ulimit,
)
from runtime.containers.imageconfig import command_line, merge_image_config
from runtime.containers.spec import (
    Peers, capabilities, compose_spec, container_env, create_missing_bind_sources,
    namespaces, no_new_privileges, parse_bind, replace_or_append_env, user_mounts,
)
from runtime.errors import InvalidParameter
from runtime.storage.overlay import stack_mount
from runtime.spec.defaults import CAPABILITY_NAMES, DEFAULT_CAPABILITIES, capability_mask

ALL = CAPABILITY_NAMES[:41]


def container(config: ContainerConfig | None = None, host: HostConfig | None = None) -> Container:
    cid = "ab" * 32
    return Container(id=cid, name="/c", created_ns=1, path="sh", args=("-c", "id"),
                     config=config or ContainerConfig(hostname="abababababab", image="busybox"),
                     host_config=host or HostConfig(), image_id="sha256:" + "1" * 64,
                     root=Path("/data/containers") / cid,
                     rw_layer=RwLayer("/l/up", "/l/work", ("/img/2", "/img/1")))


def test_default_caps_match_docker_capeff() -> None:
    caps = capabilities(HostConfig(), ALL)
    assert caps == DEFAULT_CAPABILITIES
    assert f"{capability_mask(caps):016x}" == "00000000a80425fb"


def test_cap_add_drop_all() -> None:
    assert capabilities(HostConfig(cap_drop=("ALL",)), ALL) == ()
    net_admin = capabilities(HostConfig(cap_add=("NET_ADMIN",)), ALL)
    assert capability_mask(net_admin) == 0xA80425FB | 1 << 12
    assert capabilities(HostConfig(cap_drop=("all",), cap_add=("chown",)), ALL) == ("CAP_CHOWN",)
    assert capabilities(HostConfig(cap_add=("ALL",), cap_drop=("CAP_SYS_ADMIN",)), ALL) == tuple(
        c for c in ALL if c != "CAP_SYS_ADMIN")
    assert "CAP_KILL" not in capabilities(HostConfig(cap_drop=("kill",)), ALL)
    assert capabilities(HostConfig(privileged=True), ALL) == ALL
    with pytest.raises(InvalidParameter, match='unknown capability: "CAP_BOGUS"'):
        capabilities(HostConfig(cap_add=("BOGUS",)), ALL)


def test_env_like_dockerd() -> None:
    assert replace_or_append_env(["A=1", "B=2"], ["B=3", "C=4", "A"]) == ["B=3", "C=4"]
    env = container_env(ContainerConfig(hostname="h1", tty=True,
                                        env=("PATH=/bin", "FOO=bar")))
    assert env == ("PATH=/bin", "HOSTNAME=h1", "TERM=xterm", "FOO=bar")
    assert container_env(ContainerConfig(hostname="h"))[0].startswith("PATH=/usr/local/sbin")


def test_merge_image_config() -> None:
    image: dict[str, object] = {
        "Env": ["PATH=/img", "X=1"], "Cmd": ["sh"], "WorkingDir": "/w", "User": "u",
        "Labels": {"a": "img", "b": "img"}, "ExposedPorts": {"80/tcp": {}},
        "StopSignal": "SIGQUIT", "Entrypoint": None}
    merged = merge_image_config(ContainerConfig(env=("X=2",), labels={"a": "user"}), image)
    assert merged.env == ("X=2", "PATH=/img")
    assert merged.cmd == ("sh",) and merged.entrypoint is None
    assert merged.working_dir == "/w" and merged.user == "u" and merged.stop_signal == "SIGQUIT"
    assert merged.labels == {"a": "user", "b": "img"}
    assert merged.exposed_ports == ("80/tcp",)
    # a user Cmd wins; an explicit entrypoint keeps the image's Cmd out
    assert merge_image_config(ContainerConfig(cmd=("echo",)), image).cmd == ("echo",)
    ep = merge_image_config(ContainerConfig(entrypoint=("/bin/true",)),
                            {"Cmd": ["x"], "Entrypoint": ["/e"]})
    assert ep.entrypoint == ("/bin/true",) and ep.cmd is None
    # --entrypoint "" clears the image's entrypoint and its Cmd (documented behaviour)
    empty = merge_image_config(ContainerConfig(entrypoint=("",)), {"Cmd": ["x"], "Entrypoint": ["/e"]})
    assert command_line(empty) == ()
    given = merge_image_config(ContainerConfig(entrypoint=("",), cmd=("echo", "hi")),
                               {"Cmd": ["x"], "Entrypoint": ["/e"]})
    assert command_line(given) == ("echo", "hi")


def test_namespaces_per_mode() -> None:
    assert namespaces(HostConfig(), Peers(), False) == {
        "mnt": None, "uts": None, "ipc": None, "pid": None, "net": None}
    assert "cgroup" in namespaces(HostConfig(), Peers(), True)
    host = namespaces(HostConfig(network_mode="host", pid_mode="host", ipc_mode="host",
                                 uts_mode="host"), Peers(), False)
    assert host == {"mnt": None}
    joined = namespaces(HostConfig(network_mode="container:x"), Peers(network=42), False)
    assert joined["net"] == "/proc/42/ns/net"
    with pytest.raises(InvalidParameter):
        namespaces(HostConfig(pid_mode="container:x"), Peers(), False)


def test_binds_and_mounts(tmp_path: Path) -> None:
    assert parse_bind("/a:/b:ro") == ("/a", "/b", False, "rprivate")
    assert parse_bind("/a:/b") == ("/a", "/b", True, "rprivate")
    with pytest.raises(InvalidParameter):
        parse_bind("/a")
    with pytest.raises(InvalidParameter, match="named volumes"):
        parse_bind("vol:/b")
    mounts, points = user_mounts(HostConfig(
        binds=(f"{tmp_path}:/data:ro",),
        mounts=(MountRequest(target="/t", type="tmpfs", tmpfs_options=TmpfsOptions(size_bytes=1 << 20)),),
        tmpfs={"/run": "size=1m"}))
    assert [(m.destination, m.type) for m in mounts] == [("/data", "bind"), ("/t", "tmpfs"), ("/run", "tmpfs")]
    assert "ro" in mounts[0].options and "size=1024k" in mounts[1].options
    assert points[0].rw is False and points[0].mode == "ro"


def test_missing_bind_source_is_created_as_directory(tmp_path: Path) -> None:
    missing = tmp_path / "a" / "b"
    existing = tmp_path / "file"
    existing.write_text("x")
    create_missing_bind_sources(HostConfig(binds=(f"{missing}:/in", f"{existing}:/f:ro", "vol:/v")))
    assert missing.is_dir() and (missing.stat().st_mode & 0o777) == 0o755
    assert existing.read_text() == "x"
    assert not (tmp_path / "vol").exists()


def test_no_new_privileges_forms() -> None:
    assert no_new_privileges(["no-new-privileges"])
    assert no_new_privileges(["no-new-privileges:true"])
    assert no_new_privileges(["no-new-privileges=true"])
    assert not no_new_privileges(["no-new-privileges:false"])
    assert not no_new_privileges(None)


def test_compose_spec() -> None:
    c = container(host=HostConfig(shm_size=1 << 20, ulimits=(Ulimit("nofile", 10, 20),),
                                  group_add=("audio",), sysctls={"net.ipv4.ip_forward": "1"}))
    spec = compose_spec(c, cgroup_dirs=("/sys/fs/cgroup/memory/pydockerd/x",), all_caps=ALL,
                        masked_default=("/proc/kcore",))
    assert spec.process.args == ("sh", "-c", "id")
    assert spec.process.cwd == "/" and spec.process.user.additional_groups == ("audio",)
    assert spec.process.rlimits == (("RLIMIT_NOFILE", 10, 20),)
    assert spec.rootfs.mount == stack_mount(("/img/2", "/img/1"), "/l/up", "/l/work")
    assert spec.rootfs.mount.option("lowerdir") == "/img/2:/img/1"
    assert spec.rootfs.mount.option("upperdir") == "/l/up" and spec.rootfs.mount.chdir is None
    dests = [m.destination for m in spec.mounts]
    assert dests[:7] == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"]
    assert dests[7:] == ["/etc/resolv.conf", "/etc/hostname", "/etc/hosts"]
    assert spec.mounts[7].source == str(c.root / "resolv.conf")
    assert "size=1024k" in spec.mounts[6].options
    assert spec.masked_paths == ("/proc/kcore",) and "/proc/sys" in spec.readonly_paths
    assert spec.hostname == "abababababab" and spec.cgroup_dirs == ("/sys/fs/cgroup/memory/pydockerd/x",)
    assert spec.sysctls == {"net.ipv4.ip_forward": "1"}
    priv = compose_spec(container(host=HostConfig(privileged=True)), all_caps=ALL)
    assert priv.masked_paths == () and priv.readonly_paths == () and priv.privileged
    assert "ro" not in priv.mounts[3].options


def test_privileged_devices_walks_like_libcontainer(tmp_path: Path) -> None:
    import os
    import stat as st

    from runtime.containers.spec import privileged_devices
    (tmp_path / "net").mkdir()
    (tmp_path / "pts").mkdir()
    for rel in ("mem", "net/tun", "pts/0", "console", "ptmx"):
        os.mknod(tmp_path / rel, 0o600 | st.S_IFCHR, os.makedev(1, 1))
    paths = {d.path for d in privileged_devices(str(tmp_path))}
    assert {str(tmp_path / "mem"), str(tmp_path / "net/tun")} <= paths
    assert not {str(tmp_path / p) for p in ("pts/0", "console", "ptmx")} & paths


def test_compose_spec_with_init() -> None:
    spec = compose_spec(container(), all_caps=ALL, init_path="/usr/bin/tini-static")
    assert spec.process.args == ("/sbin/docker-init", "--", "sh", "-c", "id")
    init = spec.mounts[-1]
    assert (init.destination, init.type, init.source) == ("/sbin/docker-init", "bind",
                                                          "/usr/bin/tini-static")
    assert "ro" in init.options
