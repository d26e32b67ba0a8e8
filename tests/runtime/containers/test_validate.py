from __future__ import annotations

import pytest

from runtime.containers.model import HostConfig
from runtime.containers.validate import validate_host_config
from runtime.errors import InvalidParameter

MB = 1024 * 1024


@pytest.mark.parametrize(("host", "message"), [
    (HostConfig(memory=-5), "Minimum memory limit allowed is 6MB"),
    (HostConfig(memory_reservation=MB), "Minimum memory reservation allowed is 6MB"),
    (HostConfig(memory=10 * MB, memory_reservation=20 * MB), "can not be less than memory reservation"),
    (HostConfig(memory_swap=10 * MB), "You should always set the Memory limit when using Memoryswap limit"),
    (HostConfig(memory_swappiness=101), "valid memory swappiness range is 0-100"),
    (HostConfig(cpu_period=999), "CPU cfs period can not be less than 1ms"),
    (HostConfig(cpu_quota=999), "CPU cfs quota can not be less than 1ms"),
    (HostConfig(nano_cpus=1, cpu_quota=5000), "Nano CPUs and CPU Quota cannot both be set"),
    (HostConfig(blkio_weight=5), "Range of blkio weight is from 10 to 1000"),
    (HostConfig(io_maximum_iops=1), "does not support Maximum IO Bandwidth or Maximum IO IOps"),
])
def test_dockerd_rules(host: HostConfig, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_host_config(host)


def test_update_may_set_swap_alone_and_accepts_what_create_accepts() -> None:
    validate_host_config(HostConfig(memory_swap=10 * MB), update=True)
    validate_host_config(HostConfig(memory=6 * MB, memory_swap=-1, memory_swappiness=-1, cpu_quota=-1))
