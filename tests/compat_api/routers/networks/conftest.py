from tests.runtime.network.conftest import (  # noqa: F401  (fixtures)
    bridge_name,
    netns_factory,
    netns_pid,
    service,
    subnet_octet,
)
