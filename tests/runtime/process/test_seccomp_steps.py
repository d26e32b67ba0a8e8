"""Where init loads the seccomp filter, against the recording fake of the kernel."""

from __future__ import annotations

import dataclasses

from runtime.linux import seccomp as L
from runtime.linux import syscalls as S
from runtime.linux.syscalls_fake import RecordingSyscalls
from runtime.process.init import InitState, Stdio, container_steps, exec_steps, run_steps
from runtime.spec.model import ExecSpec
from tests.runtime.process.test_init_steps import FakeChannel, make_kernel, make_spec

# ret ALLOW: never loaded here, only its address is handed to the (fake) prctl
FILTER = L.CompiledFilter(b"\x06\x00\x00\x00\x00\x00\xff\x7f")


def _names(steps: list[tuple[str, object]]) -> list[str]:
    return [name for name, _ in steps]


def test_without_no_new_privileges_the_filter_goes_in_before_the_privilege_drop() -> None:
    names = _names(container_steps(make_spec()))  # type: ignore[arg-type]
    at = names.index("seccomp")
    assert names[at - 1:at + 4] == ["workdir", "seccomp", "bounding set", "switch user",
                                    "capabilities"]


def test_with_no_new_privileges_the_filter_goes_in_last() -> None:
    names = _names(container_steps(make_spec(no_new_privileges=True)))  # type: ignore[arg-type]
    assert names[-4:] == ["lookup", "close fds", "seccomp", "exec"]
    assert names.index("no_new_privileges") < names.index("seccomp")


def test_exec_steps_place_it_the_same_way() -> None:
    spec = make_spec()
    for nnp, before in ((False, "bounding set"), (True, "exec")):
        process = dataclasses.replace(spec.process, no_new_privileges=nnp)
        names = _names(exec_steps(ExecSpec("c1", "e1", process)))  # type: ignore[arg-type]
        assert names[names.index("seccomp") + 1] == before
        assert names.count("seccomp") == 1


def _run(nnp: bool, seccomp: L.CompiledFilter | None) -> RecordingSyscalls:
    spec = make_spec(no_new_privileges=nnp)
    sc = make_kernel()
    state = InitState(sc=sc, channel=FakeChannel(), process=spec.process,
                      stdio=Stdio(10, 11, 12), rootfs_mount="/run/pd/rootfs", last_cap=40,
                      cgroup_dirs=spec.cgroup_dirs, seccomp=seccomp)
    run_steps(container_steps(spec), state)
    return sc


def _load_index(sc: RecordingSyscalls) -> int:
    loads = [i for i, (name, args) in enumerate(sc.calls)
             if name == "prctl" and args[0] == L.PR_SET_SECCOMP]
    assert len(loads) == 1
    assert sc.calls[loads[0]][1][1:3] == (L.SECCOMP_MODE_FILTER, FILTER.address)
    return loads[0]


def test_loaded_while_init_still_has_every_capability() -> None:
    sc = _run(False, FILTER)
    at = _load_index(sc)
    later = [name for name, _ in sc.calls[at + 1:]]
    first_drop = next(i for i, (n, a) in enumerate(sc.calls) if n == "prctl"
                      and a[0] == S.PR_CAPBSET_DROP)
    assert at < first_drop
    assert "capset" in later and "setresuid" in later and later[-1] == "execve"


def test_loaded_after_no_new_privs_right_before_execve() -> None:
    sc = _run(True, FILTER)
    at = _load_index(sc)
    nnp = next(i for i, (n, a) in enumerate(sc.calls) if n == "prctl"
               and a[0] == S.PR_SET_NO_NEW_PRIVS)
    assert nnp < at
    assert [name for name, _ in sc.calls[at + 1:]] == ["execve"]


def test_no_filter_no_prctl() -> None:
    sc = _run(False, None)
    assert not [a for n, a in sc.calls if n == "prctl" and a[0] == L.PR_SET_SECCOMP]


def test_supervisor_precompiles_the_default_filter(tmp_path: object) -> None:
    from pathlib import Path

    from runtime.process.supervisor import Supervisor
    from runtime.spec.defaults import DEFAULT_CAPABILITIES
    from runtime.spec.seccomp import resolve
    from runtime.spec.seccomp_default import DEFAULT_PROFILE

    if not L.AVAILABLE:
        return
    sup = Supervisor(Path(str(tmp_path)))
    sup.warm_up()
    assert sup.filters.compiled == 1
    # what the daemon sends for a default container: the same filter, not compiled again
    profile = resolve(DEFAULT_PROFILE, tuple(reversed(DEFAULT_CAPABILITIES)))
    assert profile is not None
    sup.filters.get(profile)
    assert sup.filters.compiled == 1
