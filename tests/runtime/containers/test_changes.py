"""`docker commit --change` applied to a container's Config."""

from __future__ import annotations

import pytest

from runtime.containers.changes import apply_changes
from runtime.containers.model import ContainerConfig, HealthConfig
from runtime.errors import InvalidParameter


def test_healthcheck_change_sets_health_config() -> None:
    config = apply_changes(ContainerConfig(), ["HEALTHCHECK --interval=200ms --retries=2 CMD true"])
    assert config.healthcheck == HealthConfig(test=("CMD-SHELL", "true"), interval=200_000_000, retries=2)


def test_healthcheck_exec_form_and_none() -> None:
    config = apply_changes(ContainerConfig(), ['HEALTHCHECK CMD ["/bin/check", "-q"]'])
    assert config.healthcheck is not None and config.healthcheck.test == ("CMD", "/bin/check", "-q")
    disabled = apply_changes(config, ["HEALTHCHECK NONE"])
    assert disabled.healthcheck is not None and disabled.healthcheck.test == ("NONE",)


def test_healthcheck_unknown_flag_is_refused() -> None:
    with pytest.raises(InvalidParameter):
        apply_changes(ContainerConfig(), ["HEALTHCHECK --colour=red CMD true"])
