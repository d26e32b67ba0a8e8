"""The child side of a start or exec: one ordered list of named init steps, then execve.

Runs in a process the supervisor has just forked (already pid 1 of the new pid namespace
when the spec asks for one). Every kernel operation goes through the ``Syscalls`` seam;
every failure is raised as :class:`InitError` naming its step, which the supervisor turns
into ``ExecFailed(step, text)`` and the client into dockerd's ``StartFailed`` message.

Nothing here may load code once the container root is entered (CVE-2019-14271): users
are parsed from /etc/passwd as data, and every module used is imported by the supervisor
before it forks.

The parts: :mod:`~runtime.process.init_state` (state, error), :mod:`~runtime.process.init_steps`
(the steps shared by start and exec), :mod:`~runtime.process.init_container` (the steps of a
container start only); this module runs them and assembles the start and exec lists.
"""

from __future__ import annotations

import os

from runtime.linux import syscalls as S
from runtime.linux.users import UserError
from runtime.process.init_container import start_steps
from runtime.process.init_state import InitError, InitState, Stdio, Step, go_error
from runtime.process.init_steps import (
    open_console,
    step_bounding_set,
    step_capabilities,
    step_close_fds,
    step_close_inherited,
    step_cwd,
    step_exec,
    step_join_cgroups,
    step_lookup,
    step_no_new_privileges,
    step_oom_score,
    step_prepare,
    step_rlimits,
    step_stdio,
    step_switch_user,
    step_user,
    with_seccomp,
)
from runtime.spec.model import ContainerSpec, ExecSpec


def run_steps(steps: list[Step], state: InitState) -> None:
    for name, step in steps:
        try:
            step(state)
        except InitError:
            raise
        except UserError as exc:
            raise InitError(name, str(exc)) from exc
        except OSError as exc:
            where = f" {exc.filename}:" if exc.filename else ""
            raise InitError(name, f"error during container init step {name!r}:{where} "
                            f"{go_error(exc)}") from exc
        except (ValueError, KeyError) as exc:
            raise InitError(name, f"error during container init step {name!r}: {exc}") from exc


def container_steps(spec: ContainerSpec) -> list[Step]:
    """The ordered init steps of a container's main process."""
    return with_seccomp(start_steps(spec), spec.process.no_new_privileges)


# ---- exec only --------------------------------------------------------------------------

EXEC_NAMESPACES = ("cgroup", "ipc", "uts", "net", "mnt")


def exec_steps(spec: ExecSpec) -> list[Step]:
    """The ordered init steps of a process exec'd into a running container."""

    def namespaces(st: InitState) -> None:
        fds = []
        root = -1
        try:
            # the container's root as its init sees it, taken before joining: setns(mnt)
            # alone puts us at the namespace's root, which is the host's when the daemon
            # runs in a chroot (or the init moved its rootfs instead of pivoting)
            root = st.sc.open(f"/proc/{st.init_pid}/root", os.O_PATH | os.O_DIRECTORY)
            for kind in EXEC_NAMESPACES:
                fds.append((kind, st.sc.open(f"/proc/{st.init_pid}/ns/{kind}", os.O_RDONLY)))
            for kind, fd in fds:
                st.sc.setns(fd, S.NAMESPACE_FLAGS[kind])
            st.sc.fchdir(root)
            st.sc.chroot(".")
            st.sc.chdir("/")
        finally:
            for _, fd in fds:
                st.sc.close(fd)
            if root >= 0:
                st.sc.close(root)

    def console(st: InitState) -> None:
        if spec.process.tty:
            root = st.sc.open("/", os.O_PATH | os.O_DIRECTORY)
            try:
                st.console = open_console(st, root)
            finally:
                st.sc.close(root)

    return with_seccomp([
        ("prepare", step_prepare),
        ("close inherited fds", step_close_inherited),
        ("join cgroups", step_join_cgroups),
        ("oom score", step_oom_score),
        ("namespaces", namespaces),
        ("console", console),
        ("rlimits", step_rlimits),
        ("stdio", step_stdio),
        ("user", step_user),
        ("bounding set", step_bounding_set),
        ("switch user", step_switch_user),
        ("capabilities", step_capabilities),
        ("no_new_privileges", step_no_new_privileges),
        ("cwd", step_cwd),
        ("lookup", step_lookup),
        ("close fds", step_close_fds),
        ("exec", step_exec),
    ], spec.process.no_new_privileges)


__all__ = ["InitError", "InitState", "Stdio", "Step", "run_steps", "container_steps",
           "exec_steps", "go_error"]
