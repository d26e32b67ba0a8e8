"""Docker's seccomp profile format, and its resolution into one container's filter.

A Docker profile (the ``--security-opt seccomp=<json>`` content, and the built-in default in
:mod:`runtime.spec.seccomp_default`) extends the OCI ``LinuxSeccomp`` with conditions:
``archMap`` (the native architecture and its sub-architectures) and per rule ``includes`` /
``excludes`` on the container's capabilities (its bounding set), the host's architecture
(Go's names: "amd64", "arm64", "x86"...) and its kernel version. :func:`resolve` evaluates
them as dockerd's ``setupSeccomp`` does and returns the condition-free
:class:`~runtime.spec.model.SeccompProfile` the runtime compiles and loads.

Parsing follows Go's ``encoding/json`` where clients can tell: field names match case-
insensitively, unknown fields are ignored, a wrong type is an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runtime.spec.model import SeccompArg, SeccompProfile, SeccompRule

# platform.machine() -> the arch name dockerd matches "arches" conditions against
# (libseccomp-golang's names for Go's GOARCH).
_MACHINE_ARCH = {
    "x86_64": "amd64", "amd64": "amd64", "i386": "x86", "i686": "x86", "aarch64": "arm64",
    "arm64": "arm64", "armv7l": "arm", "armv6l": "arm", "ppc64le": "ppc64le",
    "s390x": "s390x", "riscv64": "riscv64", "mips64": "mips64", "mips64el": "mipsel64",
}
# dockerd's arch name -> the libseccomp architecture an ``archMap`` entry is keyed by.
_SCMP_ARCH = {
    "x86": "SCMP_ARCH_X86", "amd64": "SCMP_ARCH_X86_64", "arm": "SCMP_ARCH_ARM",
    "arm64": "SCMP_ARCH_AARCH64", "mips64": "SCMP_ARCH_MIPS64",
    "mips64n32": "SCMP_ARCH_MIPS64N32", "mipsel64": "SCMP_ARCH_MIPSEL64",
    "mips3l64n32": "SCMP_ARCH_MIPSEL64N32", "mipsle": "SCMP_ARCH_MIPSEL",
    "ppc": "SCMP_ARCH_PPC", "ppc64": "SCMP_ARCH_PPC64", "ppc64le": "SCMP_ARCH_PPC64LE",
    "riscv64": "SCMP_ARCH_RISCV64", "s390": "SCMP_ARCH_S390", "s390x": "SCMP_ARCH_S390X",
}


class ProfileError(ValueError):
    """A profile dockerd would refuse; ``str()`` is dockerd's message."""


@dataclass(frozen=True, slots=True)
class RuleFilter:
    """A rule condition: all ``caps`` in the bounding set / the arch among ``arches`` /
    the kernel at least ``min_kernel`` ((major, minor))."""

    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class ConditionalRule:
    """A Docker profile rule: a :class:`SeccompRule` kept only where ``includes`` holds
    and ``excludes`` does not."""

    rule: SeccompRule
    includes: RuleFilter | None = None
    excludes: RuleFilter | None = None


@dataclass(frozen=True, slots=True)
class DockerProfile:
    """A seccomp profile in Docker's format (``moby/profiles/seccomp.Seccomp``)."""

    default_action: str
    rules: tuple[ConditionalRule, ...]
    default_errno_ret: int | None = None
    arch_map: tuple[tuple[str, tuple[str, ...]], ...] = ()
    architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Host:
    """What conditions are evaluated against: dockerd's arch name and (major, minor)."""

    arch: str
    kernel: tuple[int, int]


def host() -> Host:
    """This machine, as dockerd sees it."""
    machine = os.uname().machine   # platform.machine(), without loading platform
    return Host(_MACHINE_ARCH.get(machine, machine), kernel_version(os.uname().release))


def kernel_version(release: str) -> tuple[int, int]:
    """"6.1.0-18-amd64" -> (6, 1); minor revisions and suffixes are ignored."""
    head = release.split("-", 1)[0].split(".")
    digits = ["".join(c for c in part[:3] if c.isdigit()) for part in head[:2]]
    if len(digits) < 2 or not all(digits):
        raise ProfileError(f'failed to parse kernel version "{release}"')
    return int(digits[0]), int(digits[1])


# --- resolution ------------------------------------------------------------------------------


def resolve(profile: DockerProfile, capabilities: Collection[str],
            where: Host | None = None) -> SeccompProfile | None:
    """The filter for a container whose bounding set is ``capabilities`` ("CAP_*" names).

    None when the profile has neither a default action nor rules (dockerd: seccomp off).
    """
    if not profile.default_action and not profile.rules:
        return None
    if profile.architectures and profile.arch_map:
        raise ProfileError("both 'architectures' and 'archMap' are specified in the seccomp "
                           "profile, use either 'architectures' or 'archMap'")
    here = where or host()
    caps = set(capabilities)
    arches = list(profile.architectures)
    native = _SCMP_ARCH.get(here.arch)
    for arch, subs in profile.arch_map:
        if arch == native:
            arches += [arch, *subs]
            break
    rules = tuple(c.rule for c in profile.rules if _applies(c, caps, here))
    return SeccompProfile(profile.default_action, rules, profile.default_errno_ret,
                          tuple(arches), profile.flags)


def _applies(rule: ConditionalRule, caps: set[str], here: Host) -> bool:
    ex = rule.excludes
    if ex is not None:
        if ex.arches and here.arch in ex.arches:
            return False
        if ex.caps and any(c in caps for c in ex.caps):
            return False
        if ex.min_kernel is not None and here.kernel >= ex.min_kernel:
            return False
    inc = rule.includes
    if inc is not None:
        if inc.arches and here.arch not in inc.arches:
            return False
        if inc.caps and not all(c in caps for c in inc.caps):
            return False
        if inc.min_kernel is not None and here.kernel < inc.min_kernel:
            return False
    return True


# --- parsing ---------------------------------------------------------------------------------


def parse_profile(text: str) -> DockerProfile:
    """A profile from its JSON text; :class:`ProfileError` with dockerd's wording."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"Decoding seccomp profile failed: {_go_json_error(text, exc)}") from exc
    try:
        if data is None:
            return DockerProfile("", ())
        obj = _obj(data, "Seccomp")
        rules = tuple(_rule(r) for r in _list(_field(obj, "syscalls"), "syscalls") if r is not None)
        arch_map = tuple(_arch_entry(a) for a in _list(_field(obj, "archMap"), "archMap"))
        errno_ret = _field(obj, "defaultErrnoRet")
        return DockerProfile(
            default_action=_str(_field(obj, "defaultAction"), "defaultAction"),
            rules=rules,
            default_errno_ret=None if errno_ret is None else _uint(errno_ret, "defaultErrnoRet"),
            arch_map=arch_map,
            architectures=_strs(_field(obj, "architectures"), "architectures"),
            flags=_strs(_field(obj, "flags"), "flags"),
        )
    except ProfileError as exc:
        if str(exc).startswith("both "):
            raise
        raise ProfileError(f"Decoding seccomp profile failed: {exc}") from exc


def _go_json_error(text: str, exc: json.JSONDecodeError) -> str:
    """Go's wording for the commonest syntax errors; Python's otherwise."""
    if exc.pos >= len(text.rstrip()):
        return "unexpected end of JSON input"
    go = {"Expecting value": "looking for beginning of value",
          "Expecting property name enclosed in double quotes":
              "looking for beginning of object key string",
          "Expecting ':' delimiter": "after object key",
          "Extra data": "after top-level value"}.get(exc.msg)
    if go is None:
        return str(exc)
    return f"invalid character '{text[exc.pos]}' {go}"


def _field(obj: Mapping[str, Any], name: str) -> Any:
    if name in obj:
        return obj[name]
    low = name.lower()
    for key, value in obj.items():
        if key.lower() == low:
            return value
    return None


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ProfileError(f"json: cannot unmarshal {_kind(value)} into Go value of type {what}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProfileError(f"json: cannot unmarshal {_kind(value)} into Go struct field {what}")
    return value


def _str(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ProfileError(f"json: cannot unmarshal {_kind(value)} into Go struct field {what} "
                           "of type string")
    return value


def _strs(value: Any, what: str) -> tuple[str, ...]:
    return tuple(_str(v, what) for v in _list(value, what))


def _uint(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProfileError(f"json: cannot unmarshal {_kind(value)} into Go struct field {what} "
                           "of type uint")
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


def _arch_entry(value: Any) -> tuple[str, tuple[str, ...]]:
    obj = _obj(value, "seccomp.Architecture")
    return (_str(_field(obj, "architecture"), "architecture"),
            _strs(_field(obj, "subArchitectures"), "subArchitectures"))


def _filter(value: Any) -> RuleFilter | None:
    if value is None:
        return None
    obj = _obj(value, "seccomp.Filter")
    raw = _field(obj, "minKernel")
    min_kernel = None
    if raw is not None and raw != "":
        text = _str(raw, "minKernel")
        parts = text.split(".")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ProfileError(f'invalid kernel version: "{text}", expected "<kernel>.<major>"')
        min_kernel = (int(parts[0]), int(parts[1]))
        if min_kernel == (0, 0):
            raise ProfileError(f'invalid kernel version: "{text}", expected "<kernel>.<major>": '
                               "version cannot be 0.0")
    return RuleFilter(_strs(_field(obj, "caps"), "caps"), _strs(_field(obj, "arches"), "arches"),
                      min_kernel)


def _arg(value: Any) -> SeccompArg:
    obj = _obj(value, "specs.LinuxSeccompArg")
    return SeccompArg(_uint(_field(obj, "index") or 0, "index"),
                      _uint(_field(obj, "value") or 0, "value"),
                      _str(_field(obj, "op"), "op"),
                      _uint(_field(obj, "valueTwo") or 0, "valueTwo"))


def _rule(value: Any) -> ConditionalRule:
    obj = _obj(value, "seccomp.Syscall")
    name = _str(_field(obj, "name"), "name")
    names = _strs(_field(obj, "names"), "names")
    if name:
        if names:
            raise ProfileError("both 'name' and 'names' are specified in the seccomp profile, "
                               "use either 'name' or 'names'")
        names = (name,)
    errno_ret = _field(obj, "errnoRet")
    rule = SeccompRule(names, _str(_field(obj, "action"), "action"),
                       None if errno_ret is None else _uint(errno_ret, "errnoRet"),
                       tuple(_arg(a) for a in _list(_field(obj, "args"), "args")))
    return ConditionalRule(rule, _filter(_field(obj, "includes")),
                           _filter(_field(obj, "excludes")))


def builtin_names(profile: DockerProfile) -> Sequence[str]:
    """Every syscall name the profile mentions, in order (for tests and docs)."""
    seen: dict[str, None] = {}
    for c in profile.rules:
        for n in c.rule.names:
            seen.setdefault(n, None)
    return list(seen)


__all__ = ["ProfileError", "RuleFilter", "ConditionalRule", "DockerProfile", "Host", "host",
           "kernel_version", "resolve", "parse_profile", "builtin_names"]
