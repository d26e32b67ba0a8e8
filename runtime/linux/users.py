"""Resolve Config.User against a container's /etc/passwd and /etc/group, parsed as data.

No NSS: the files come from an untrusted rootfs and are only ever read as bytes
(CVE-2019-14271). Semantics follow runc's ``user.GetExecUser`` plus moby's fix for
CVE-2022-36109 (the primary gid is always among the supplementary groups).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_ID = 2**31 - 1


class UserError(Exception):
    """``str(err)`` is dockerd's text, e.g. ``unable to find user x: no matching entries in passwd file``."""


@dataclass(frozen=True, slots=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True, slots=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ExecUser:
    uid: int
    gid: int
    sgids: tuple[int, ...]
    home: str


def _lines(data: bytes) -> list[list[str]]:
    rows = []
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        rows.append(line.split(":"))
    return rows


def _int(text: str) -> int | None:
    try:
        value = int(text, 10)
    except ValueError:
        return None
    return value if text.strip().lstrip("-").isdigit() else None


def parse_passwd(data: bytes) -> list[PasswdEntry]:
    entries = []
    for f in _lines(data):
        f += [""] * (7 - len(f))
        uid, gid = _int(f[2]), _int(f[3])
        if uid is None or gid is None:
            continue
        entries.append(PasswdEntry(f[0], uid, gid, f[5]))
    return entries


def parse_group(data: bytes) -> list[GroupEntry]:
    entries = []
    for f in _lines(data):
        f += [""] * (4 - len(f))
        gid = _int(f[2])
        if gid is None:
            continue
        members = tuple(m for m in f[3].split(",") if m)
        entries.append(GroupEntry(f[0], gid, members))
    return entries


def _check_range(value: int) -> int:
    if not 0 <= value <= MAX_ID:
        raise UserError(f"uids and gids must be in range 0-{MAX_ID}")
    return value


def resolve_user(spec: str, additional_groups: tuple[str, ...],
                 passwd: list[PasswdEntry] | None, group: list[GroupEntry] | None) -> ExecUser:
    """Resolve ``spec`` ("", "name", "uid", "uid:gid", "name:group"); None = file missing."""
    user_arg, _, group_arg = spec.partition(":")
    if user_arg == "":
        user_arg = "0"
    uid, gid, home = 0, 0, "/"
    user_num = _int(user_arg)
    match = None
    for entry in passwd or ():
        if entry.name == user_arg or (user_num is not None and entry.uid == user_num):
            match = entry
            break
    if match is None:
        if user_num is None:
            raise UserError(f"unable to find user {user_arg}: no matching entries in passwd file")
        uid = _check_range(user_num)
    else:
        uid, gid, home = match.uid, match.gid, match.home or "/"

    groups = group or []
    sgids: list[int] = []
    if group_arg:
        gid = _find_group(group_arg, groups)
    elif match is not None:
        sgids = [g.gid for g in groups if match.name in g.members]
    for extra in additional_groups:
        sgids.append(_find_group(extra, groups, additional=True))
    ordered: list[int] = [gid]
    for g in sgids:
        if g not in ordered:
            ordered.append(g)
    return ExecUser(uid, gid, tuple(ordered), home)


def _find_group(arg: str, groups: list[GroupEntry], additional: bool = False) -> int:
    num = _int(arg)
    for entry in groups:
        if entry.name == arg or (num is not None and entry.gid == num):
            return entry.gid
    if num is None:
        if additional:
            raise UserError(f"Unable to find group {arg}: no matching entries in group file")
        raise UserError(f"unable to find group {arg}: no matching entries in group file")
    return _check_range(num)


__all__ = ["UserError", "PasswdEntry", "GroupEntry", "ExecUser", "parse_passwd", "parse_group",
           "resolve_user"]
