"""The container spec: what the runtime needs to start a container process (an OCI subset).

Composed by the container service from a container's Config/HostConfig; consumed by the
process runtime (``runtime.process``), which ships it to the supervisor as JSON. Every
value is a frozen dataclass so a spec can be logged, compared and replayed; ``to_json`` /
``from_json`` give the wire form used on the supervisor's control socket.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Mount:
    """A mount inside the container; ``destination`` is absolute inside the container root.

    ``type`` is one of "bind", "proc", "tmpfs", "devpts", "sysfs", "mqueue", "cgroup",
    "overlay". ``options`` uses the OCI spellings ("ro", "nosuid", "rbind", "size=65536k").
    """

    destination: str
    type: str
    source: str
    options: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"destination": self.destination, "type": self.type, "source": self.source,
                "options": list(self.options)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Mount:
        return cls(d["destination"], d["type"], d["source"], tuple(d.get("options", ())))


@dataclass(frozen=True, slots=True)
class LayerMount:
    """How to mount a container's root filesystem: plain data, as containerd's
    ``mount.Mount`` that snapshotters return.

    The layer store describes the mount (``runtime.storage.overlay.stack_mount``: the one
    place overlay options are assembled); ``runtime.linux.mounts.mount_layer`` is the one
    function that performs it, through the syscall seam. In between it travels, unchanged,
    in the start request to the supervisor and the container's init.

    ``type``: "overlay" (``source`` "overlay", ``options`` ``lowerdir=top:...:base``,
    ``upperdir=``, ``workdir=`` and fs options such as ``index=off``) or "bind" (``source``
    is the directory, ``options`` ``("rbind",)``: a rootfs without image layers).

    ``chdir``: an absolute directory that relative paths in ``options`` are resolved from.
    Mount options are limited to one page, so deep images name their layers by short
    paths relative to the layer store (``l/<link>``); whoever mounts changes its working
    directory to this for the mount(2) call.
    """

    type: str
    source: str
    options: tuple[str, ...]
    chdir: str | None = None

    def __post_init__(self) -> None:
        if self.chdir is not None and not self.chdir.startswith("/"):
            raise ValueError(f"mount chdir must be absolute: {self.chdir!r}")

    @property
    def data(self) -> str:
        """The options as one comma-separated string (mount(8)'s ``-o``)."""
        return ",".join(self.options)

    def option(self, key: str) -> str | None:
        """The value of option ``key=value`` (None when absent)."""
        prefix = key + "="
        return next((o[len(prefix):] for o in self.options if o.startswith(prefix)), None)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "source": self.source,
                             "options": list(self.options)}
        if self.chdir is not None:
            d["chdir"] = self.chdir
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LayerMount:
        return cls(d["type"], d["source"], tuple(d["options"]), d.get("chdir"))


@dataclass(frozen=True, slots=True)
class RootfsSpec:
    """The container's root filesystem, mounted by init inside the container's mount
    namespace (``mount``), and made read-only after the other mounts when ``readonly``."""

    mount: LayerMount
    readonly: bool = False

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mount": self.mount.to_json(), "readonly": self.readonly}
        d.update(self._older_form())
        return d

    def _older_form(self) -> dict[str, Any]:
        """The keys supervisors from before ``mount`` read (one may still run after an
        upgrade, with live-restore); they ignore ``mount`` and so mount without fs options."""
        m = self.mount
        if m.type != "overlay":
            return {"lowerdirs": [], "upperdir": m.source, "workdir": ""}
        lower = m.option("lowerdir")
        d: dict[str, Any] = {"lowerdirs": lower.split(":") if lower else [],
                             "upperdir": m.option("upperdir") or "",
                             "workdir": m.option("workdir") or ""}
        if m.chdir is not None:
            d["chdir"] = m.chdir
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RootfsSpec:
        return cls(LayerMount.from_json(d["mount"]), bool(d.get("readonly", False)))


@dataclass(frozen=True, slots=True)
class UserSpec:
    """``user`` as in Config.User: "", "name", "uid", "uid:gid", "name:group".

    Resolved inside init from the rootfs's /etc/passwd and /etc/group, parsed as data.
    ``additional_groups`` is HostConfig.GroupAdd (names or numbers).
    """

    user: str
    additional_groups: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"user": self.user, "additional_groups": list(self.additional_groups)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> UserSpec:
        return cls(d["user"], tuple(d.get("additional_groups", ())))


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """The process to exec: argv, environment, cwd, identity, stdio mode and privileges.

    ``capabilities`` (e.g. "CAP_CHOWN") go to the bounding, permitted and effective sets;
    inheritable and ambient stay empty. ``rlimits`` entries are (name, soft, hard), e.g.
    ("RLIMIT_NOFILE", 1024, 524288). ``console_size`` is (height, width).
    """

    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: UserSpec
    tty: bool
    open_stdin: bool
    capabilities: tuple[str, ...]
    no_new_privileges: bool = False
    rlimits: tuple[tuple[str, int, int], ...] = ()
    console_size: tuple[int, int] | None = None
    oom_score_adj: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "args": list(self.args), "env": list(self.env), "cwd": self.cwd,
            "user": self.user.to_json(), "tty": self.tty, "open_stdin": self.open_stdin,
            "capabilities": list(self.capabilities), "no_new_privileges": self.no_new_privileges,
            "rlimits": [list(r) for r in self.rlimits],
            "console_size": list(self.console_size) if self.console_size else None,
            "oom_score_adj": self.oom_score_adj,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ProcessSpec:
        cs = d.get("console_size")
        return cls(
            args=tuple(d["args"]), env=tuple(d["env"]), cwd=d["cwd"],
            user=UserSpec.from_json(d["user"]), tty=bool(d["tty"]),
            open_stdin=bool(d["open_stdin"]), capabilities=tuple(d["capabilities"]),
            no_new_privileges=bool(d.get("no_new_privileges", False)),
            rlimits=tuple((str(n), int(s), int(h)) for n, s, h in d.get("rlimits", ())),
            console_size=(int(cs[0]), int(cs[1])) if cs else None,
            oom_score_adj=d.get("oom_score_adj"),
        )


@dataclass(frozen=True, slots=True)
class DeviceNode:
    """A device node created in the container's /dev (``type`` is "c" or "b")."""

    path: str
    type: str
    major: int
    minor: int
    mode: int = 0o666
    uid: int = 0
    gid: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "type": self.type, "major": self.major, "minor": self.minor,
                "mode": self.mode, "uid": self.uid, "gid": self.gid}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DeviceNode:
        return cls(d["path"], d["type"], int(d["major"]), int(d["minor"]), int(d.get("mode", 0o666)),
                   int(d.get("uid", 0)), int(d.get("gid", 0)))


@dataclass(frozen=True, slots=True)
class SeccompArg:
    """One argument condition of a seccomp rule (OCI ``LinuxSeccompArg``).

    ``op`` is a libseccomp comparison name ("SCMP_CMP_EQ", "SCMP_CMP_MASKED_EQ"...). For
    SCMP_CMP_MASKED_EQ ``value`` is the mask and ``value_two`` the value compared with.
    """

    index: int
    value: int
    op: str
    value_two: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "value": self.value, "valueTwo": self.value_two,
                "op": self.op}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SeccompArg:
        return cls(int(d["index"]), int(d["value"]), str(d["op"]), int(d.get("valueTwo", 0)))


@dataclass(frozen=True, slots=True)
class SeccompRule:
    """``action`` for every syscall in ``names`` (when ``args`` all match).

    ``action`` is a libseccomp action name ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"...);
    ``errno_ret`` the errno of SCMP_ACT_ERRNO/SCMP_ACT_TRACE (None: EPERM, as runc).
    """

    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[SeccompArg, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"names": list(self.names), "action": self.action}
        if self.errno_ret is not None:
            d["errnoRet"] = self.errno_ret
        if self.args:
            d["args"] = [a.to_json() for a in self.args]
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SeccompRule:
        errno_ret = d.get("errnoRet")
        return cls(tuple(d["names"]), str(d["action"]),
                   None if errno_ret is None else int(errno_ret),
                   tuple(SeccompArg.from_json(a) for a in d.get("args") or ()))


@dataclass(frozen=True, slots=True)
class SeccompProfile:
    """A seccomp filter as the runtime loads it (OCI ``LinuxSeccomp``): no conditions left.

    Docker's profile format (``archMap``, ``includes``/``excludes`` on capabilities, arch and
    kernel) is resolved into this per container by :mod:`runtime.spec.seccomp`.
    ``architectures`` are libseccomp names ("SCMP_ARCH_X86_64"); empty means native only.
    """

    default_action: str
    syscalls: tuple[SeccompRule, ...] = ()
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"defaultAction": self.default_action,
                             "architectures": list(self.architectures),
                             "syscalls": [r.to_json() for r in self.syscalls]}
        if self.default_errno_ret is not None:
            d["defaultErrnoRet"] = self.default_errno_ret
        if self.flags:
            d["flags"] = list(self.flags)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SeccompProfile:
        errno_ret = d.get("defaultErrnoRet")
        return cls(str(d["defaultAction"]),
                   tuple(SeccompRule.from_json(r) for r in d.get("syscalls") or ()),
                   None if errno_ret is None else int(errno_ret),
                   tuple(d.get("architectures") or ()), tuple(d.get("flags") or ()))

    def digest(self) -> str:
        """A stable hash of the filter's content: the key of compiled-filter caches."""
        import hashlib  # not at import: the supervisor loads this module and needs no OpenSSL

        raw = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()


NAMESPACE_KINDS = ("mnt", "uts", "ipc", "net", "pid", "cgroup")


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """Everything needed to start a container's main process.

    ``namespaces``: keys among :data:`NAMESPACE_KINDS`; value ``None`` = a new namespace, a
    path (e.g. /proc/<pid>/ns/net) = join it; key absent = share the host's.
    ``mounts`` are applied in order after the rootfs (default mounts first, then user
    binds/tmpfs). ``cgroup_dirs`` are absolute cgroup directories the process joins before
    exec. ``pause_before_exec``: report ``Created(pid)`` once the namespaces exist and wait
    for ``resume``. ``seccomp``: the filter loaded last before exec (and for every exec into
    the container); None runs unconfined.
    """

    container_id: str
    process: ProcessSpec
    rootfs: RootfsSpec
    hostname: str
    domainname: str
    namespaces: Mapping[str, str | None]
    mounts: tuple[Mount, ...]
    masked_paths: tuple[str, ...]
    readonly_paths: tuple[str, ...]
    devices: tuple[DeviceNode, ...]
    sysctls: Mapping[str, str]
    cgroup_dirs: tuple[str, ...]
    privileged: bool = False
    pause_before_exec: bool = False
    seccomp: SeccompProfile | None = None

    def to_json(self) -> dict[str, Any]:
        d = {
            "container_id": self.container_id, "process": self.process.to_json(),
            "rootfs": self.rootfs.to_json(), "hostname": self.hostname,
            "domainname": self.domainname, "namespaces": dict(self.namespaces),
            "mounts": [m.to_json() for m in self.mounts],
            "masked_paths": list(self.masked_paths), "readonly_paths": list(self.readonly_paths),
            "devices": [d.to_json() for d in self.devices], "sysctls": dict(self.sysctls),
            "cgroup_dirs": list(self.cgroup_dirs), "privileged": self.privileged,
            "pause_before_exec": self.pause_before_exec,
        }
        if self.seccomp is not None:
            d["seccomp"] = self.seccomp.to_json()  # absent otherwise: the older wire form
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ContainerSpec:
        seccomp = d.get("seccomp")
        return cls(
            container_id=d["container_id"], process=ProcessSpec.from_json(d["process"]),
            rootfs=RootfsSpec.from_json(d["rootfs"]), hostname=d["hostname"],
            domainname=d.get("domainname", ""), namespaces=dict(d["namespaces"]),
            mounts=tuple(Mount.from_json(m) for m in d.get("mounts", ())),
            masked_paths=tuple(d.get("masked_paths", ())),
            readonly_paths=tuple(d.get("readonly_paths", ())),
            devices=tuple(DeviceNode.from_json(x) for x in d.get("devices", ())),
            sysctls=dict(d.get("sysctls", {})), cgroup_dirs=tuple(d.get("cgroup_dirs", ())),
            privileged=bool(d.get("privileged", False)),
            pause_before_exec=bool(d.get("pause_before_exec", False)),
            seccomp=SeccompProfile.from_json(seccomp) if seccomp is not None else None,
        )


@dataclass(frozen=True, slots=True)
class ExecSpec:
    """A process started inside a running container (``docker exec``)."""

    container_id: str
    exec_id: str
    process: ProcessSpec
    privileged: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"container_id": self.container_id, "exec_id": self.exec_id,
                "process": self.process.to_json(), "privileged": self.privileged}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ExecSpec:
        return cls(d["container_id"], d["exec_id"], ProcessSpec.from_json(d["process"]),
                   bool(d.get("privileged", False)))


__all__ = ["Mount", "LayerMount", "RootfsSpec", "UserSpec", "ProcessSpec", "DeviceNode",
           "ContainerSpec", "ExecSpec", "NAMESPACE_KINDS", "SeccompArg", "SeccompRule", "SeccompProfile"]
