from pathlib import Path

import pytest

from runtime.engine import check_root_is_a_mount
from runtime.errors import SystemError_


def test_a_daemon_whose_root_is_no_mount_point_refuses_to_start(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text("23 22 0:5 / /proc rw,nosuid shared:2 - proc proc rw\n")
    with pytest.raises(SystemError_, match="root directory is not a mount point.*mount --bind"):
        check_root_is_a_mount(str(info))
    info.write_text("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n")
    check_root_is_a_mount(str(info))
