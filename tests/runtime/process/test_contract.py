"""Start failures are classified and worded like dockerd's setExitCodeFromError."""

from __future__ import annotations

from runtime.errors import InvalidParameter, SystemError_
from runtime.process.contract import StartInvalidConfig, StartSystemError, start_failed

PREFIX = ("failed to create task for container: failed to create shim task: OCI runtime create "
          "failed: runc create failed: unable to start container process: error during "
          "container init: ")


def test_not_found_is_invalid_config_127() -> None:
    err = start_failed("lookup", 'exec: "x": executable file not found in $PATH')
    assert isinstance(err, StartInvalidConfig) and isinstance(err, InvalidParameter)
    assert err.exit_code == 127
    assert str(err) == PREFIX + 'exec: "x": executable file not found in $PATH: unknown'


def test_permission_and_directory_are_126() -> None:
    assert start_failed("lookup", 'exec: "/etc/passwd": permission denied').exit_code == 126
    err = start_failed("lookup", 'exec: "/etc": is a directory')
    assert err.exit_code == 126 and str(err).endswith("is a directory: permission denied: unknown")


def test_other_failures_are_system_errors_128() -> None:
    err = start_failed("pivot_root", "invalid argument")
    assert isinstance(err, StartSystemError) and isinstance(err, SystemError_)
    assert err.exit_code == 128 and err.step == "pivot_root"


def test_user_errors_have_no_runtime_prefix() -> None:
    err = start_failed("user", "unable to find user bob: no matching entries in passwd file")
    assert str(err) == "unable to find user bob: no matching entries in passwd file"
