"""Config.User resolution from /etc/passwd and /etc/group parsed as data."""

from __future__ import annotations

import pytest

from runtime.linux.users import UserError, parse_group, parse_passwd, resolve_user

PASSWD = parse_passwd(b"root:x:0:0:root:/root:/bin/sh\n# comment\n\nbroken:x:notanumber:0::/:\n"
                      b"nobody:x:65534:65534:nobody:/home:/bin/false\n"
                      b"app:x:1000:1000::/srv/app:/bin/sh\n")
GROUP = parse_group(b"root:x:0:\nwheel:x:10:root,app\nnogroup:x:65534:\napp:x:1000:\n"
                    b"extra:x:2000:app\n")


def test_parse_skips_comments_and_malformed_lines() -> None:
    assert [e.name for e in PASSWD] == ["root", "nobody", "app"]
    assert GROUP[1].members == ("root", "app")


def test_empty_user_is_root_with_member_groups() -> None:
    u = resolve_user("", (), PASSWD, GROUP)
    assert (u.uid, u.gid, u.sgids, u.home) == (0, 0, (0, 10), "/root")


def test_name_resolves_primary_group_first_then_memberships() -> None:
    u = resolve_user("app", (), PASSWD, GROUP)
    assert (u.uid, u.gid, u.sgids, u.home) == (1000, 1000, (1000, 10, 2000), "/srv/app")


def test_numeric_uid_without_entry_gets_gid_0() -> None:
    u = resolve_user("1234", (), PASSWD, GROUP)
    assert (u.uid, u.gid, u.sgids, u.home) == (1234, 0, (0,), "/")


def test_uid_gid_pair_skips_membership_groups() -> None:
    u = resolve_user("65534:65534", (), PASSWD, GROUP)
    assert (u.uid, u.gid, u.sgids) == (65534, 65534, (65534,))
    u = resolve_user("app:nogroup", (), PASSWD, GROUP)
    assert (u.uid, u.gid, u.sgids) == (1000, 65534, (65534,))


def test_additional_groups_by_name_and_number() -> None:
    u = resolve_user("nobody", ("wheel", "4242"), PASSWD, GROUP)
    assert u.sgids == (65534, 10, 4242)


def test_missing_files_allow_numeric_ids_only() -> None:
    assert resolve_user("5:6", (), None, None).sgids == (6,)
    with pytest.raises(UserError, match="^unable to find user bob: no matching entries in passwd file$"):
        resolve_user("bob", (), None, None)


def test_unknown_names_use_dockerd_text() -> None:
    with pytest.raises(UserError, match="^unable to find user bob: no matching entries in passwd file$"):
        resolve_user("bob", (), PASSWD, GROUP)
    with pytest.raises(UserError, match="^unable to find group bob: no matching entries in group file$"):
        resolve_user("nobody:bob", (), PASSWD, GROUP)
    with pytest.raises(UserError, match="find group nope"):
        resolve_user("", ("nope",), PASSWD, GROUP)


def test_out_of_range_ids_rejected() -> None:
    with pytest.raises(UserError, match="range"):
        resolve_user("4294967296", (), PASSWD, GROUP)
    with pytest.raises(UserError):
        resolve_user("-1", (), PASSWD, GROUP)
