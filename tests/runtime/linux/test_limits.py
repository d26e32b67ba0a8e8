"""The daemon raises its soft open-files limit to the hard one."""

from __future__ import annotations

import subprocess
import sys


def test_soft_nofile_raised_to_hard() -> None:
    code = ("from runtime.linux.limits import raise_open_files_limit; import resource; "
            "print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE))")
    out = subprocess.run(["sh", "-c", f'ulimit -S -n 1024 && ulimit -H -n 4096 && exec "$0" -c "$1"',
                          sys.executable, code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["(4096,", "4096)", "(4096,", "4096)"]
