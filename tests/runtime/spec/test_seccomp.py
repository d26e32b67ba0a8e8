"""Docker's seccomp profile format, the built-in default, and its resolution per container."""

from __future__ import annotations

import dataclasses
import json

import pytest

from runtime.errors import SystemError_
from runtime.spec.defaults import CAPABILITY_NAMES, DEFAULT_CAPABILITIES
from runtime.spec.model import (
    ContainerSpec, LayerMount, ProcessSpec, RootfsSpec, SeccompArg, SeccompProfile, SeccompRule, UserSpec,
)
from runtime.spec.seccomp import (
    Host, ProfileError, RuleFilter, builtin_names, kernel_version, parse_profile, resolve,
)
from runtime.spec.seccomp_default import (
    ALWAYS_ALLOWED, DEFAULT_PROFILE, container_profile, seccomp_option,
)

AMD64 = Host("amd64", (6, 1))
ADMIN = DEFAULT_CAPABILITIES + ("CAP_SYS_ADMIN",)


def allowed(profile: SeccompProfile) -> set[str]:
    """Names allowed unconditionally (rules without argument conditions)."""
    return {n for r in profile.syscalls if r.action == "SCMP_ACT_ALLOW" and not r.args
            for n in r.names}


def rules_for(profile: SeccompProfile, name: str) -> list[SeccompRule]:
    return [r for r in profile.syscalls if name in r.names]


# --- the built-in profile --------------------------------------------------------------------


def test_default_profile_counts_match_dockerd() -> None:
    # 361 always-allowed names; 426 distinct names allowed by some rule (engine 28).
    assert len(ALWAYS_ALLOWED) == len(set(ALWAYS_ALLOWED)) == 361
    allow_names = {n for c in DEFAULT_PROFILE.rules if c.rule.action == "SCMP_ACT_ALLOW"
                   for n in c.rule.names}
    assert len(allow_names) == 426
    assert DEFAULT_PROFILE.default_action == "SCMP_ACT_ERRNO"
    assert DEFAULT_PROFILE.default_errno_ret == 1
    assert len(DEFAULT_PROFILE.rules) == 31


def test_dangerous_syscalls_are_not_always_allowed() -> None:
    refused = ("acct add_key bpf clock_settime clone clone3 create_module delete_module "
               "finit_module get_kernel_syms get_mempolicy init_module io_uring_setup "
               "io_uring_enter io_uring_register ioperm iopl kcmp kexec_file_load kexec_load "
               "keyctl lookup_dcookie mbind mount move_mount move_pages nfsservctl "
               "open_by_handle_at open_tree fsopen fsmount perf_event_open personality "
               "pivot_root process_vm_readv process_vm_writev ptrace query_module quotactl "
               "reboot request_key set_mempolicy setns settimeofday stime swapon swapoff "
               "sysfs _sysctl umount umount2 unshare uselib userfaultfd ustat vm86 vm86old")
    assert not set(refused.split()) & set(ALWAYS_ALLOWED)
    for name in ("read", "write", "execve", "seccomp", "socketcall", "close_range", "statx"):
        assert name in ALWAYS_ALLOWED


def test_default_caps_on_amd64() -> None:
    profile = resolve(DEFAULT_PROFILE, DEFAULT_CAPABILITIES, AMD64)
    assert profile is not None
    assert profile.architectures == ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")
    names = allowed(profile)
    assert {"arch_prctl", "modify_ldt", "chroot", "ptrace"} <= names  # amd64; SYS_CHROOT; >=4.8
    assert not {"unshare", "mount", "setns", "clone", "clone3", "bpf", "reboot",
                "settimeofday", "syslog", "open_by_handle_at", "cacheflush"} & names
    [clone] = rules_for(profile, "clone")
    assert clone.args == (SeccompArg(0, 0x7E020000, "SCMP_CMP_MASKED_EQ"),)
    [clone3] = rules_for(profile, "clone3")
    assert (clone3.action, clone3.errno_ret) == ("SCMP_ACT_ERRNO", 38)
    personality = rules_for(profile, "personality")
    assert sorted(r.args[0].value for r in personality) == [0, 8, 0x20000, 0x20008, 0xFFFFFFFF]
    assert rules_for(profile, "socket")[0].args == (SeccompArg(0, 40, "SCMP_CMP_NE"),)


def test_sys_admin_reallows_namespaces_and_drops_the_clone_rules() -> None:
    profile = resolve(DEFAULT_PROFILE, ADMIN, AMD64)
    assert profile is not None
    assert {"unshare", "mount", "setns", "clone", "clone3", "umount2", "sethostname"} <= \
        allowed(profile)
    assert all(not r.args for r in rules_for(profile, "clone"))
    assert all(r.action == "SCMP_ACT_ALLOW" for r in rules_for(profile, "clone3"))


@pytest.mark.parametrize("cap,names", [
    ("CAP_SYS_PTRACE", {"kcmp", "pidfd_getfd", "process_madvise"}),
    ("CAP_SYS_TIME", {"settimeofday", "clock_settime"}),
    ("CAP_SYS_MODULE", {"init_module", "finit_module", "delete_module"}),
    ("CAP_SYS_BOOT", {"reboot"}),
    ("CAP_SYS_NICE", {"mbind", "set_mempolicy"}),
    ("CAP_BPF", {"bpf"}),
    ("CAP_PERFMON", {"perf_event_open"}),
    ("CAP_DAC_READ_SEARCH", {"open_by_handle_at"}),
])
def test_capabilities_reallow_their_syscalls(cap: str, names: set[str]) -> None:
    without = resolve(DEFAULT_PROFILE, DEFAULT_CAPABILITIES, AMD64)
    with_cap = resolve(DEFAULT_PROFILE, DEFAULT_CAPABILITIES + (cap,), AMD64)
    assert without is not None and with_cap is not None
    assert names <= allowed(with_cap) and not names & allowed(without)


def test_dropping_sys_chroot_drops_chroot() -> None:
    caps = tuple(c for c in DEFAULT_CAPABILITIES if c != "CAP_SYS_CHROOT")
    profile = resolve(DEFAULT_PROFILE, caps, AMD64)
    assert profile is not None and "chroot" not in allowed(profile)


def test_other_hosts() -> None:
    arm = resolve(DEFAULT_PROFILE, DEFAULT_CAPABILITIES, Host("arm64", (6, 1)))
    assert arm is not None
    assert arm.architectures == ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")
    assert {"cacheflush", "set_tls"} <= allowed(arm) and "arch_prctl" not in allowed(arm)
    s390 = resolve(DEFAULT_PROFILE, DEFAULT_CAPABILITIES, Host("s390x", (6, 1)))
    assert s390 is not None
    assert [r.args[0].index for r in rules_for(s390, "clone")] == [1]
    old = resolve(DEFAULT_PROFILE, DEFAULT_CAPABILITIES, Host("amd64", (4, 4)))
    assert old is not None and "ptrace" not in allowed(old)


def test_kernel_version() -> None:
    assert kernel_version("6.18.44-fc-v657") == (6, 18)
    assert kernel_version("3.12-1-amd64") == (3, 12)
    with pytest.raises(ProfileError):
        kernel_version("weird")


# --- the profile format ----------------------------------------------------------------------


def test_parse_round_trips_the_default_profile_shape() -> None:
    text = json.dumps({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "archMap": [{"architecture": a, "subArchitectures": list(s) or None}
                    for a, s in DEFAULT_PROFILE.arch_map],
        "syscalls": [
            {"names": list(c.rule.names), "action": c.rule.action,
             **({"errnoRet": c.rule.errno_ret} if c.rule.errno_ret is not None else {}),
             **({"args": [{"index": a.index, "value": a.value, "op": a.op} for a in c.rule.args]}
                if c.rule.args else {}),
             **({"includes": _filter_json(c.includes)} if c.includes else {}),
             **({"excludes": _filter_json(c.excludes)} if c.excludes else {})}
            for c in DEFAULT_PROFILE.rules],
    })
    assert parse_profile(text) == DEFAULT_PROFILE
    assert len(builtin_names(DEFAULT_PROFILE)) == 426  # clone3's ERRNO rule adds no name


def _filter_json(f: RuleFilter) -> dict[str, object]:
    d: dict[str, object] = {}
    if f.caps:
        d["caps"] = list(f.caps)
    if f.arches:
        d["arches"] = list(f.arches)
    if f.min_kernel:
        d["minKernel"] = f"{f.min_kernel[0]}.{f.min_kernel[1]}"
    return d


def test_parse_old_name_field_case_insensitive_keys_and_unknown_fields() -> None:
    profile = parse_profile(json.dumps({
        "DefaultAction": "SCMP_ACT_ALLOW", "comment": "x",
        "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoret": 28,
                      "args": [{"index": 1, "value": 5, "valueTwo": 7,
                                "op": "SCMP_CMP_MASKED_EQ"}]}]}))
    resolved = resolve(profile, DEFAULT_CAPABILITIES, AMD64)
    assert resolved == SeccompProfile(
        "SCMP_ACT_ALLOW",
        (SeccompRule(("mkdir",), "SCMP_ACT_ERRNO", 28,
                     (SeccompArg(1, 5, "SCMP_CMP_MASKED_EQ", 7),)),))


@pytest.mark.parametrize("text,message", [
    ("{bad", "Decoding seccomp profile failed: invalid character 'b' looking for beginning "
             "of object key string"),
    ("builtin", "Decoding seccomp profile failed: invalid character 'b' looking for "
                "beginning of value"),
    ("{", "Decoding seccomp profile failed: unexpected end of JSON input"),
    ('{"syscalls": 3}', "Decoding seccomp profile failed: json: cannot unmarshal number into "
                        "Go struct field syscalls"),
    ('{"syscalls": [{"name": "a", "names": ["b"]}]}',
     "both 'name' and 'names' are specified in the seccomp profile, use either 'name' or "
     "'names'"),
    ('{"syscalls": [{"names": ["a"], "includes": {"minKernel": "4"}}]}',
     'Decoding seccomp profile failed: invalid kernel version: "4", expected '
     '"<kernel>.<major>"'),
])
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(text)
    assert str(info.value) == message


def test_architectures_and_arch_map_together_are_refused() -> None:
    profile = parse_profile(json.dumps({
        "defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []}]}))
    with pytest.raises(ProfileError, match="both 'architectures' and 'archMap'"):
        resolve(profile, (), AMD64)


def test_empty_profile_means_no_filter() -> None:
    assert resolve(parse_profile("{}"), (), AMD64) is None
    assert resolve(parse_profile("null"), (), AMD64) is None


# --- choosing a container's profile ----------------------------------------------------------


def test_seccomp_option_last_wins_and_colon_form() -> None:
    assert seccomp_option(None) == ""
    assert seccomp_option(["no-new-privileges", "seccomp=unconfined"]) == "unconfined"
    assert seccomp_option(["seccomp:unconfined"]) == "unconfined"
    assert seccomp_option(["seccomp=unconfined", 'seccomp={"a":1}']) == '{"a":1}'
    assert seccomp_option(["apparmor=unconfined"]) == ""


def test_container_profile_choices() -> None:
    default = container_profile(None, False, DEFAULT_CAPABILITIES, AMD64)
    assert default == resolve(DEFAULT_PROFILE, DEFAULT_CAPABILITIES, AMD64)
    assert container_profile(["seccomp=builtin"], False, DEFAULT_CAPABILITIES, AMD64) == default
    assert container_profile(["seccomp=unconfined"], False, DEFAULT_CAPABILITIES, AMD64) is None
    assert container_profile(None, True, CAPABILITY_NAMES, AMD64) is None
    custom = json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                         "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})
    expected = SeccompProfile("SCMP_ACT_ALLOW", (SeccompRule(("mkdir",), "SCMP_ACT_ERRNO"),))
    assert container_profile([f"seccomp={custom}"], False, (), AMD64) == expected
    # dockerd loads an explicit profile even for a privileged container
    assert container_profile([f"seccomp={custom}"], True, CAPABILITY_NAMES, AMD64) == expected
    with pytest.raises(SystemError_, match="Decoding seccomp profile failed"):
        container_profile(["seccomp=builtin"], True, CAPABILITY_NAMES, AMD64)


# --- wire form -------------------------------------------------------------------------------


def _spec(seccomp: SeccompProfile | None) -> ContainerSpec:
    process = ProcessSpec(("true",), (), "/", UserSpec(""), False, False, DEFAULT_CAPABILITIES)
    return ContainerSpec("c1", process, RootfsSpec(LayerMount("bind", "/u", ("rbind",))), "h", "", {"mnt": None}, (),
                         (), (), (), {}, (), seccomp=seccomp)


def test_container_spec_json_round_trip_with_and_without_seccomp() -> None:
    profile = resolve(DEFAULT_PROFILE, DEFAULT_CAPABILITIES, AMD64)
    spec = _spec(profile)
    wire = json.loads(json.dumps(spec.to_json()))
    assert ContainerSpec.from_json(wire) == spec
    assert wire["seccomp"]["defaultErrnoRet"] == 1
    bare = _spec(None).to_json()
    assert "seccomp" not in bare  # the form older supervisors read
    assert ContainerSpec.from_json(bare).seccomp is None


def test_digest_is_stable_and_content_based() -> None:
    a = resolve(DEFAULT_PROFILE, DEFAULT_CAPABILITIES, AMD64)
    b = resolve(DEFAULT_PROFILE, DEFAULT_CAPABILITIES, AMD64)
    c = resolve(DEFAULT_PROFILE, ADMIN, AMD64)
    assert a is not None and b is not None and c is not None
    assert a.digest() == b.digest() != c.digest()
    assert SeccompProfile.from_json(a.to_json()).digest() == a.digest()
    assert dataclasses.replace(a, default_errno_ret=2).digest() != a.digest()
