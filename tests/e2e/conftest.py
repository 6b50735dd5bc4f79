"""The end-to-end layer: the same processes `lotse up` runs (broker, database, SMTP sink and the
three services as separate processes), once for the whole e2e session, on free ports.

The browser modules share another platform, with the local OpenID provider (``browser_platform``,
see tests/e2e/browser_platform.py).

Two differences serve the fault tests: the database keeps its data on disk (so that it can be
killed and restarted), and every broker connection runs through a TCP proxy that can cut them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lotse_cli.supervisor import Platform, running_platform
from lotse_devstack.processes import free_port
from tests.e2e.browser_platform import shared_platform
from tests.e2e.journey import free_ports
from tests.support import tokens
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture(scope="session")
def broker_proxy() -> Iterator[TcpProxy]:
    proxy = TcpProxy(target_port=free_port()).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory, broker_proxy: TcpProxy) -> Iterator[Platform]:
    ports = free_ports(kafka=broker_proxy.target_port)
    state: Path = tmp_path_factory.mktemp("platform")
    with running_platform(
        ports=ports,
        state_dir=state,
        echo=None,
        persistent=True,
        kafka_advertised_port=broker_proxy.port,
        # The e2e tests are not about sign-in: the services accept the tests' issuer.
        auth=tokens.issuer().auth_config(),
    ) as running:
        yield running


@pytest.fixture(scope="session")
def browser_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One platform per test worker for the browser modules, started when the first needs it."""
    with shared_platform(tmp_path_factory.mktemp("browser-platform")) as running:
        yield running
