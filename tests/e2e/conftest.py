"""The end-to-end layer: the same processes `lotse up` runs (broker, database, SMTP sink and the
three services as separate processes), on free ports.

Platforms are shared by the modules of a group (``SHARED_PLATFORM_GROUPS`` in tests/conftest.py),
which run one after another on one worker: the journeys and the fault test share ``platform``; the
browser modules share ``browser_platform``, with the local OpenID provider (see
tests/e2e/browser_platform.py), one per browser group. Each starts when its group first needs it
and stops after the group's last test.

Two differences serve the fault tests: the database keeps its data on disk (so that it can be
killed and restarted), and every broker connection runs through a TCP proxy that can cut them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from lotse_cli.supervisor import Platform, running_platform
from lotse_devstack.processes import free_port
from tests.conftest import group_of, group_of_item
from tests.e2e.browser_platform import shared_platform
from tests.e2e.journey import free_ports
from tests.support import tokens
from tests.support.tcp_proxy import TcpProxy

T = TypeVar("T")


class GroupPlatforms:
    """What the modules of one group share, started when the group first needs it and stopped
    after the group's last test (``pytest_runtest_teardown`` below) rather than at the end of the
    session: an idle platform keeps part of a core busy that the other workers need."""

    def __init__(self) -> None:
        self._running: dict[str, tuple[contextlib.ExitStack, Any]] = {}

    def get(self, group: str, start: Callable[[contextlib.ExitStack], T]) -> T:
        if group not in self._running:
            resources = contextlib.ExitStack()
            try:
                self._running[group] = (resources, start(resources))
            except BaseException:
                resources.close()
                raise
        return cast(T, self._running[group][1])

    def stop(self, group: str) -> None:
        if group in self._running:
            resources, _ = self._running.pop(group)
            resources.close()

    def stop_all(self) -> None:
        for group in list(self._running):
            self.stop(group)


SHARED = GroupPlatforms()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    try:
        return (yield)  # the module's own fixtures (its tenant, its browser pages) are torn down in here
    finally:
        # xdist runs a test only once it knows the next one (or that none comes): this is the group's end.
        if nextitem is None or group_of_item(nextitem) != group_of_item(item):
            SHARED.stop(group_of_item(item))


def pytest_sessionfinish() -> None:
    SHARED.stop_all()


@dataclass(frozen=True)
class FaultPlatform:
    platform: Platform
    proxy: TcpProxy


def _fault_platform(resources: contextlib.ExitStack, state: Path) -> FaultPlatform:
    proxy = TcpProxy(target_port=free_port()).start()
    resources.callback(proxy.stop)
    running = resources.enter_context(
        running_platform(
            ports=free_ports(kafka=proxy.target_port),
            state_dir=state,
            echo=None,
            persistent=True,
            kafka_advertised_port=proxy.port,
            # The e2e tests are not about sign-in: the services accept the tests' issuer.
            auth=tokens.issuer().auth_config(),
        )
    )
    return FaultPlatform(running, proxy)


@pytest.fixture(scope="module")
def fault_platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> FaultPlatform:
    return SHARED.get(
        group_of(request.path), lambda resources: _fault_platform(resources, tmp_path_factory.mktemp("platform"))
    )


@pytest.fixture(scope="module")
def platform(fault_platform: FaultPlatform) -> Platform:
    return fault_platform.platform


@pytest.fixture(scope="module")
def broker_proxy(fault_platform: FaultPlatform) -> TcpProxy:
    return fault_platform.proxy


@pytest.fixture(scope="module")
def browser_platform(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Platform:
    """The platform of this module's browser group, started when the group's first module needs it."""
    return SHARED.get(
        group_of(request.path),
        lambda resources: resources.enter_context(shared_platform(tmp_path_factory.mktemp("browser-platform"))),
    )
