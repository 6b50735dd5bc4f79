"""The end-to-end layer: the same processes `lotse up` runs (broker, database, SMTP sink and the
three services as separate processes), once for the whole e2e session, on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lotse_cli.supervisor import Platform, Ports, running_platform
from lotse_devstack.processes import free_port


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    ports = Ports(
        kafka=free_port(),
        mongo=free_port(),
        smtp=free_port(),
        mailbox=free_port(),
        registry=free_port(),
        matching=free_port(),
        notifications=free_port(),
    )
    state: Path = tmp_path_factory.mktemp("platform")
    with running_platform(ports=ports, state_dir=state, echo=None, persistent=False) as running:
        yield running
