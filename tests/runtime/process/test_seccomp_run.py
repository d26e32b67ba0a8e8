"""Real containers under seccomp filters, through the supervisor (root; busybox rootfs)."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from runtime.process.contract import StartFailed
from runtime.spec.defaults import DEFAULT_CAPABILITIES
from runtime.spec.model import ContainerSpec, ExecSpec, SeccompProfile
from runtime.spec.seccomp import parse_profile, resolve
from runtime.spec.seccomp_default import DEFAULT_PROFILE
from tests.runtime.process.conftest import Harness, needs_root, read_all

pytestmark = needs_root

_DEFAULT = resolve(DEFAULT_PROFILE, DEFAULT_CAPABILITIES)
assert _DEFAULT is not None
DEFAULT: SeccompProfile = _DEFAULT


def confined(spec: ContainerSpec, profile: SeccompProfile | None = DEFAULT) -> ContainerSpec:
    return dataclasses.replace(spec, seccomp=profile)


def with_caps(spec: ContainerSpec, *caps: str) -> ContainerSpec:
    process = dataclasses.replace(spec.process, capabilities=DEFAULT_CAPABILITIES + caps)
    return dataclasses.replace(spec, process=process)


def status(out: str) -> dict[str, str]:
    return {k: v.strip() for k, v in (line.split(":", 1) for line in out.splitlines())}


SECCOMP_STATUS = ("grep", "^Seccomp", "/proc/self/status")


async def test_default_profile_is_loaded_once(harness: Harness) -> None:
    code, out, err = await harness.run(confined(harness.spec(*SECCOMP_STATUS)))
    assert code == 0, err
    assert status(out) == {"Seccomp": "2", "Seccomp_filters": "1"}


async def test_no_profile_runs_unconfined(harness: Harness) -> None:
    code, out, err = await harness.run(confined(harness.spec(*SECCOMP_STATUS), None))
    assert code == 0, err
    assert status(out)["Seccomp"] == "0"


async def test_default_profile_blocks_unshare_even_for_a_user_namespace(harness: Harness) -> None:
    # unshare(CLONE_NEWUSER) needs no capability: only the filter refuses it.
    code, _, err = await harness.run(confined(harness.spec("unshare", "-U", "true")))
    assert code != 0 and "Operation not permitted" in err, err
    code, _, err = await harness.run(confined(harness.spec("unshare", "-U", "true"), None))
    assert code == 0, err


async def test_sys_admin_reallows_unshare_and_mount(harness: Harness) -> None:
    caps = DEFAULT_CAPABILITIES + ("CAP_SYS_ADMIN",)
    profile = resolve(DEFAULT_PROFILE, caps)
    spec = with_caps(harness.spec("sh", "-c", "unshare -m true && mount -t tmpfs t /tmp && "
                                  "echo mounted"), "CAP_SYS_ADMIN")
    code, out, err = await harness.run(confined(spec, profile))
    assert (code, out) == (0, "mounted\n"), err
    # the same capabilities with the default-capability profile: the filter refuses
    code, out, err = await harness.run(confined(spec, DEFAULT))
    assert code != 0 and "Operation not permitted" in err, (out, err)


async def test_ordinary_workload_runs(harness: Harness) -> None:
    script = ("ls / >/dev/null && cat /etc/passwd >/dev/null && sleep 0.01 && "
              "ping -c 1 -W 2 127.0.0.1 >/dev/null && echo x > /tmp/f && mkdir /tmp/d && "
              "chroot / true && linux32 uname -m && (echo sub) | cat")
    code, out, err = await harness.run(confined(harness.spec("sh", "-c", script)))
    assert code == 0, err
    assert out.split() == ["i686", "sub"]


async def test_custom_profile_denying_mkdir(harness: Harness) -> None:
    custom = {"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    profile = resolve(parse_profile(json.dumps(custom)), DEFAULT_CAPABILITIES)
    spec = confined(harness.spec("sh", "-c", "touch /ok && mkdir /x"), profile)
    code, out, err = await harness.run(spec)
    assert code == 1 and "Operation not permitted" in err, (out, err)


async def test_custom_errno_is_returned(harness: Harness) -> None:
    custom = {"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                            "errnoRet": 28}]}
    profile = resolve(parse_profile(json.dumps(custom)), DEFAULT_CAPABILITIES)
    code, _, err = await harness.run(confined(harness.spec("mkdir", "/x"), profile))
    assert code == 1 and "No space left on device" in err, err


async def test_non_root_user_and_no_new_privileges(harness: Harness) -> None:
    spec = confined(harness.spec("grep", "-E", "^(Seccomp|NoNewPrivs|Uid)", "/proc/self/status",
                                 user="nobody"))
    code, out, err = await harness.run(spec)
    assert code == 0, err
    assert status(out)["Seccomp"] == "2" and status(out)["Uid"].split()[0] == "65534"
    nnp = dataclasses.replace(spec, process=dataclasses.replace(spec.process,
                                                                no_new_privileges=True))
    code, out, err = await harness.run(nnp)
    assert code == 0, err
    assert status(out)["Seccomp"] == "2" and status(out)["NoNewPrivs"] == "1"


async def test_execs_get_the_container_filter(harness: Harness) -> None:
    spec = confined(harness.spec("sleep", "30"))
    init = await harness.start(spec)
    for privileged in (False, True):
        process = dataclasses.replace(spec.process, args=SECCOMP_STATUS)
        proc = await harness.client.exec(ExecSpec(spec.container_id, f"e{privileged}",
                                                  process, privileged=privileged))
        harness.started.append(proc.pid)
        loop = asyncio.get_running_loop()
        out = await loop.run_in_executor(None, read_all, proc.stdout)
        read_all(proc.stderr)
        assert await harness.wait(proc) == 0
        assert status(out) == {"Seccomp": "2", "Seccomp_filters": "1"}, privileged
    await harness.client.signal(init.pid, 9)
    await harness.wait(init)


async def test_unloadable_profile_fails_the_start(harness: Harness) -> None:
    profile = SeccompProfile("SCMP_ACT_ERRNO", architectures=("SCMP_ARCH_NOPE",))
    with pytest.raises(StartFailed) as info:
        await harness.start(confined(harness.spec("true"), profile))
    assert "seccomp" in str(info.value)


async def test_filter_denying_the_init_steps_fails_the_start(harness: Harness) -> None:
    # Without no_new_privileges the filter is in place before capset, as under runc.
    custom = SeccompProfile("SCMP_ACT_ALLOW", (
        dataclasses.replace(DEFAULT.syscalls[0], names=("capset",), action="SCMP_ACT_ERRNO"),))
    with pytest.raises(StartFailed) as info:
        await harness.start(confined(harness.spec("true"), custom))
    assert "operation not permitted" in str(info.value)
