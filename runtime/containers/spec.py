"""Compose the runtime's ``ContainerSpec`` from a container's Config and HostConfig.

Pure functions (no I/O besides stat'ing device nodes and, for images too deep for absolute
overlay paths, reading the layer store's ``l/`` links), so the composition is unit-tested
on its own: default capabilities with ``--cap-add``/``--cap-drop``, the environment
dockerd builds (PATH, HOSTNAME, TERM, then the container's Env), namespaces per mode,
default mounts plus /etc/hostname, /etc/hosts, /etc/resolv.conf and user binds/tmpfs.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from runtime.containers.model import Container, ContainerConfig, HostConfig, MountPoint, RwLayer
from runtime.errors import InvalidParameter
from runtime.spec.defaults import (
    CAPABILITY_NAMES, DEFAULT_CAPABILITIES, DEFAULT_DEVICES, DEFAULT_PATH,
    DEFAULT_READONLY_PATHS, DEFAULT_SHM_SIZE, all_host_capabilities, default_masked_paths,
    default_mounts,
)
from runtime.spec.model import (
    ContainerSpec, DeviceNode, Mount, ProcessSpec, RootfsSpec, UserSpec,
)
from runtime.spec.seccomp_default import container_profile
from runtime.storage.overlay import stack_mount
from runtime.system.initbin import IN_CONTAINER_PATH
from runtime.containers.mountspec import is_volume_bind

_RLIMITS = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
            "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack", "as"}


@dataclass(frozen=True, slots=True)
class Peers:
    """Host pids of running containers a container may join (``container:<ref>`` modes)."""

    network: int | None = None
    ipc: int | None = None
    pid: int | None = None


# --- environment -------------------------------------------------------------------------


def replace_or_append_env(defaults: Sequence[str], overrides: Iterable[str]) -> list[str]:
    """dockerd's ReplaceOrAppendEnvValues: same key replaces in place, new keys appended;
    a bare ``KEY`` (no '=') removes the key."""
    result = list(defaults)
    for entry in overrides:
        key, sep, _ = entry.partition("=")
        index = next((i for i, d in enumerate(result) if d.partition("=")[0] == key), None)
        if not sep:
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append(entry)
        else:
            result[index] = entry
    return result


def container_env(config: ContainerConfig) -> tuple[str, ...]:
    base = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={config.hostname}"]
    if config.tty:
        base.append("TERM=xterm")
    return tuple(replace_or_append_env(base, config.env or ()))


# --- capabilities ------------------------------------------------------------------------


def normalize_capability(name: str) -> str:
    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    if not upper.startswith("CAP_"):
        upper = "CAP_" + upper
    if upper not in CAPABILITY_NAMES:
        raise InvalidParameter(f'unknown capability: "{upper}"')
    return upper


def capabilities(host: HostConfig, all_caps: Sequence[str] | None = None) -> tuple[str, ...]:
    """The capability set of the container's processes (Docker's TweakCapabilities)."""
    everything = tuple(all_caps) if all_caps is not None else all_host_capabilities()
    if host.privileged:
        return everything
    adds = [normalize_capability(c) for c in host.cap_add or ()]
    drops = [normalize_capability(c) for c in host.cap_drop or ()]
    if "ALL" in adds:
        base = [c for c in everything if c not in drops]
    elif "ALL" in drops:
        base = [c for c in adds if c != "ALL"]
    else:
        base = [c for c in DEFAULT_CAPABILITIES if c not in drops] + adds
    seen: list[str] = []
    for cap in base:
        if cap not in seen:
            seen.append(cap)
    return tuple(seen)


# --- namespaces --------------------------------------------------------------------------


def namespaces(host: HostConfig, peers: Peers, cgroup_v2: bool) -> dict[str, str | None]:
    ns: dict[str, str | None] = {"mnt": None}
    if host.uts_mode != "host":
        ns["uts"] = None
    ipc = host.ipc_mode
    if ipc.startswith("container:"):
        ns["ipc"] = _ns_path(peers.ipc, "ipc")
    elif ipc != "host":
        ns["ipc"] = None
    pid = host.pid_mode
    if pid.startswith("container:"):
        ns["pid"] = _ns_path(peers.pid, "pid")
    elif pid != "host":
        ns["pid"] = None
    net = host.network_mode
    if net.startswith("container:"):
        ns["net"] = _ns_path(peers.network, "net")
    elif net != "host":
        ns["net"] = None
    cgroupns = host.cgroupns_mode or ("private" if cgroup_v2 else "host")
    if cgroupns == "private":
        ns["cgroup"] = None
    return ns


def _ns_path(pid: int | None, kind: str) -> str:
    if pid is None:
        raise InvalidParameter(f"cannot join {kind} namespace of a container that is not running")
    return f"/proc/{pid}/ns/{kind}"


# --- mounts ------------------------------------------------------------------------------


def parse_bind(spec: str) -> tuple[str, str, bool, str]:
    """``src:dst[:opts]`` -> (source, destination, read_write, propagation)."""
    parts = spec.split(":")
    if len(parts) < 2 or len(parts) > 3 or not parts[0] or not parts[1]:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    source, dest = parts[0], parts[1]
    options = parts[2].split(",") if len(parts) == 3 else []
    if not source.startswith("/"):
        if _is_volume_name(source):
            # only host paths are binds; named volumes are mounted through runtime.volumes
            raise InvalidParameter(f"not a bind: named volumes are mounted as volumes: {source}")
        raise InvalidParameter(
            f'create {source}: "{source}" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path")
    if not dest.startswith("/"):
        raise InvalidParameter(f"invalid mount config for type \"bind\": invalid mount path: "
                               f"'{dest}' mount path must be absolute")
    rw = True
    propagation = "rprivate"
    for opt in options:
        if opt == "ro":
            rw = False
        elif opt == "rw":
            rw = True
        elif opt in ("private", "rprivate", "shared", "rshared", "slave", "rslave"):
            propagation = opt
        elif opt in ("z", "Z", "nocopy", "consistent", "cached", "delegated", ""):
            continue
        else:
            raise InvalidParameter(f"invalid mode: {opt}")
    return source, dest, rw, propagation


def create_missing_bind_sources(host: HostConfig) -> None:
    """A ``Binds`` host path that does not exist is created as a directory (0755) when the
    container starts, as dockerd does; ``Mounts`` of type bind are refused instead."""
    for bind in host.binds or ():
        if is_volume_bind(bind):
            continue
        source = parse_bind(bind)[0]
        if not os.path.lexists(source):
            os.makedirs(source, 0o755, exist_ok=True)


def _is_volume_name(name: str) -> bool:
    return bool(name) and name[0].isalnum() and all(c.isalnum() or c in "_.-" for c in name)


def user_mounts(host: HostConfig) -> tuple[tuple[Mount, ...], tuple[MountPoint, ...]]:
    """Mounts from Binds, Mounts and Tmpfs, and how inspect reports them."""
    mounts: list[Mount] = []
    points: list[MountPoint] = []
    for bind in host.binds or ():
        if is_volume_bind(bind):
            continue  # a named or anonymous volume: a mount point from runtime.volumes
        source, dest, rw, propagation = parse_bind(bind)
        options = ("rbind", propagation) + (() if rw else ("ro",))
        mounts.append(Mount(dest, "bind", source, options))
        mode = bind.split(":")[2] if bind.count(":") == 2 else ""
        points.append(MountPoint("bind", source, dest, mode, rw, propagation))
    for req in host.mounts or ():
        if not req.target.startswith("/"):
            raise InvalidParameter(f"invalid mount config for type \"{req.type}\": invalid mount "
                                   f"path: '{req.target}' mount path must be absolute")
        if req.type == "bind":
            if not req.source:
                raise InvalidParameter('invalid mount config for type "bind": field Source must '
                                       "not be empty")
            if not os.path.exists(req.source):
                raise InvalidParameter(f'invalid mount config for type "bind": bind source path '
                                       f"does not exist: {req.source}")
            propagation = (req.bind_options.propagation if req.bind_options else "") or "rprivate"
            recursive = "bind" if req.bind_options and req.bind_options.non_recursive else "rbind"
            options = (recursive, propagation) + (("ro",) if req.read_only else ())
            mounts.append(Mount(req.target, "bind", req.source, options))
            points.append(MountPoint("bind", req.source, req.target, "", not req.read_only,
                                     propagation))
        elif req.type == "tmpfs":
            if req.source:
                raise InvalidParameter('invalid mount config for type "tmpfs": field Source must '
                                       "be empty")
            tmpfs_opts = ["nosuid", "nodev", "noexec"]
            if req.tmpfs_options is not None:
                if req.tmpfs_options.size_bytes:
                    tmpfs_opts.append(f"size={req.tmpfs_options.size_bytes // 1024}k")
                if req.tmpfs_options.mode:
                    tmpfs_opts.append(f"mode={req.tmpfs_options.mode:o}")
            if req.read_only:
                tmpfs_opts.append("ro")
            mounts.append(Mount(req.target, "tmpfs", "tmpfs", tuple(tmpfs_opts)))
            points.append(MountPoint("tmpfs", "", req.target, "", not req.read_only, ""))
        elif req.type == "volume":
            continue  # a mount point from runtime.volumes
        else:
            raise InvalidParameter(f"mount type unknown: {req.type!r}")
    for dest, opts in (host.tmpfs or {}).items():
        if not dest.startswith("/"):
            raise InvalidParameter(f"invalid mount path: '{dest}' mount path must be absolute")
        extra = tuple(o for o in opts.split(",") if o) if opts else ()
        base = ("noexec", "nosuid", "nodev")
        mounts.append(Mount(dest, "tmpfs", "tmpfs", base + extra))
    return tuple(mounts), tuple(points)


def mount_point_mounts(points: Iterable[MountPoint],
                       covered: Iterable[str] = ()) -> tuple[Mount, ...]:
    """Bind mounts for recorded mount points no Binds/Mounts/Tmpfs entry produces: the
    container's volumes and what ``--volumes-from`` brought in."""
    skip = set(covered)
    out = []
    for point in points:
        if point.destination in skip or point.type not in ("volume", "bind"):
            continue
        options = ("rbind", point.propagation or "rprivate") + (() if point.rw else ("ro",))
        out.append(Mount(point.destination, "bind", point.source, options))
    return tuple(out)


def by_depth(mounts: Iterable[Mount]) -> list[Mount]:
    """dockerd's mount order: fewer path components first (stable), so /a is mounted
    before /a/b and never shadows it."""
    return sorted(mounts, key=lambda m: os.path.normpath(m.destination).count("/"))


def etc_mounts(container: Container) -> tuple[Mount, ...]:
    return (
        Mount("/etc/resolv.conf", "bind", str(container.resolv_conf_path), ("rbind", "rprivate")),
        Mount("/etc/hostname", "bind", str(container.hostname_path), ("rbind", "rprivate")),
        Mount("/etc/hosts", "bind", str(container.hosts_path), ("rbind", "rprivate")),
    )


# --- devices -----------------------------------------------------------------------------


def device_nodes(host: HostConfig) -> tuple[DeviceNode, ...]:
    nodes = list(DEFAULT_DEVICES)
    for mapping in host.devices or ():
        try:
            st = os.stat(mapping.path_on_host)
        except OSError as exc:
            raise InvalidParameter(
                f"error gathering device information while adding custom device "
                f'"{mapping.path_on_host}": no such file or directory') from exc
        if stat.S_ISCHR(st.st_mode):
            kind = "c"
        elif stat.S_ISBLK(st.st_mode):
            kind = "b"
        else:
            raise InvalidParameter(f"error gathering device information while adding custom "
                                   f'device "{mapping.path_on_host}": not a device node')
        path = mapping.path_in_container or mapping.path_on_host
        nodes = [n for n in nodes if n.path != path]
        nodes.append(DeviceNode(path, kind, os.major(st.st_rdev), os.minor(st.st_rdev),
                                stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid))
    return tuple(nodes)


_SKIPPED_DEV_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})


def privileged_devices(dev: str = "/dev") -> tuple[DeviceNode, ...]:
    """Every character/block device of the host's /dev, recursively (``--privileged``),
    skipping what libcontainer skips: /dev/console, /dev/ptmx and the pts/shm/fd/mqueue dirs."""
    nodes: list[DeviceNode] = []

    def walk(directory: str) -> None:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return
        for name in names:
            path = os.path.join(directory, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if name not in _SKIPPED_DEV_DIRS:
                    walk(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                if path in (os.path.join(dev, "console"), os.path.join(dev, "ptmx")):
                    continue
                kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
                nodes.append(DeviceNode(path, kind, os.major(st.st_rdev), os.minor(st.st_rdev),
                                        stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid))

    walk(dev)
    defaults = {n.path for n in DEFAULT_DEVICES}
    return DEFAULT_DEVICES + tuple(n for n in nodes if n.path not in defaults)


# --- process -----------------------------------------------------------------------------


def rlimits(host: HostConfig) -> tuple[tuple[str, int, int], ...]:
    result: list[tuple[str, int, int]] = []
    for ulimit in host.ulimits or ():
        if ulimit.name not in _RLIMITS:
            raise InvalidParameter(f"invalid ulimit type: {ulimit.name}")
        if ulimit.soft > ulimit.hard:
            raise InvalidParameter(f"ulimit soft limit must be less than or equal to hard "
                                   f"limit: {ulimit.soft} > {ulimit.hard}")
        result.append((f"RLIMIT_{ulimit.name.upper()}", ulimit.soft, ulimit.hard))
    return tuple(result)


def no_new_privileges(security_opt: Iterable[str] | None) -> bool:
    value = False
    for opt in security_opt or ():
        key, sep, val = opt.replace("=", ":", 1).partition(":") if "=" in opt else opt.partition(":")
        if key == "no-new-privileges":
            value = (val.lower() in ("", "true", "1")) if sep else True
    return value


def process_spec(container: Container, all_caps: Sequence[str] | None = None) -> ProcessSpec:
    config, host = container.config, container.host_config
    size = host.console_size if config.tty and host.console_size and all(host.console_size) else None
    return ProcessSpec(
        args=(container.path, *container.args),
        env=container_env(config),
        cwd=config.working_dir or "/",
        user=UserSpec(config.user, tuple(host.group_add or ())),
        tty=config.tty,
        open_stdin=config.open_stdin,
        capabilities=capabilities(host, all_caps),
        no_new_privileges=no_new_privileges(host.security_opt),
        rlimits=rlimits(host),
        console_size=size,
        oom_score_adj=host.oom_score_adj or None,
    )


def rootfs_spec(layer: RwLayer, readonly: bool) -> RootfsSpec:
    """The rootfs of ``layer``, described by the layer store (``stack_mount``): the same
    mount ``docker cp`` and copy-up perform. ``layer.lowerdirs`` stay the layers' diff dirs
    (what inspect shows)."""
    return RootfsSpec(stack_mount(layer.lowerdirs, layer.upperdir, layer.workdir), readonly)


def compose_spec(
    container: Container,
    *,
    cgroup_dirs: Sequence[str] = (),
    peers: Peers = Peers(),
    cgroup_v2: bool = False,
    all_caps: Sequence[str] | None = None,
    masked_default: Sequence[str] | None = None,
    init_path: str | None = None,
) -> ContainerSpec:
    """The full spec for starting ``container`` (which must have its rw layer prepared).

    ``init_path``: run that init binary as PID 1, bind-mounted read-only at
    ``/sbin/docker-init``, with the container's command as its child (``--init``)."""
    host = container.host_config
    layer = container.rw_layer
    if layer is None:
        raise InvalidParameter(f"container {container.id} has no root filesystem")
    shm = host.shm_size or DEFAULT_SHM_SIZE
    mounts = list(default_mounts(shm))
    if host.privileged:
        mounts = [_privileged_mount(m) for m in mounts]
    create_missing_bind_sources(host)
    extra, _ = user_mounts(host)
    extra += mount_point_mounts(container.mount_points, (m.destination for m in extra))
    mounts += list(etc_mounts(container)) + by_depth(extra)
    masked = (() if host.privileged else
              tuple(host.masked_paths) if host.masked_paths is not None else
              tuple(masked_default) if masked_default is not None else default_masked_paths())
    readonly = (() if host.privileged else
                tuple(host.readonly_paths) if host.readonly_paths is not None else
                DEFAULT_READONLY_PATHS)
    process = process_spec(container, all_caps)
    if init_path is not None:
        mounts.append(Mount(IN_CONTAINER_PATH, "bind", init_path, ("bind", "ro", "rprivate")))
        process = replace(process, args=(IN_CONTAINER_PATH, "--", *process.args))
    return ContainerSpec(
        container_id=container.id,
        process=process,
        rootfs=rootfs_spec(layer, host.readonly_rootfs),
        hostname=container.config.hostname,
        domainname=container.config.domainname,
        namespaces=namespaces(host, peers, cgroup_v2),
        mounts=tuple(mounts),
        masked_paths=masked,
        readonly_paths=readonly,
        devices=privileged_devices() if host.privileged else device_nodes(host),
        sysctls=dict(host.sysctls or {}),
        cgroup_dirs=tuple(cgroup_dirs),
        privileged=host.privileged,
        seccomp=container_profile(host.security_opt, host.privileged, process.capabilities),
    )


def _privileged_mount(mount: Mount) -> Mount:
    if mount.type in ("sysfs", "cgroup"):
        return Mount(mount.destination, mount.type, mount.source,
                     tuple(o for o in mount.options if o != "ro"))
    return mount


__all__ = ["Peers", "replace_or_append_env", "container_env", "normalize_capability",
           "capabilities", "namespaces", "parse_bind", "user_mounts", "mount_point_mounts",
           "create_missing_bind_sources", "by_depth", "etc_mounts",
           "device_nodes", "privileged_devices", "rlimits", "no_new_privileges", "process_spec",
           "compose_spec", "rootfs_spec"]
