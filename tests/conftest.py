"""The test layer: one broker and one database per session, isolation per test.

Where the servers come from is decided by ``lotse_devstack``: given URLs, containers where a
Docker engine answers, or the embedded Tansu broker and SecantusDB.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import topics_for_tenants
from lotse_devstack import Stack, ensure_topics, running_stack
from tests.support import tokens

TESTS = Path(__file__).parent
# The browser fixtures (browser, page, phone_page) for every test that drives a real Chromium.
pytest_plugins = ("tests.support.browser",)

# Development mode for every test, set before any settings are built: secrets are generated once
# per session into a home of its own (never the checkout's .lotse/), which the service processes
# the tests start inherit.
TEST_HOME = Path(tempfile.mkdtemp(prefix="lotse-test-home-"))
os.environ["LOTSE_ENV"] = "development"
os.environ["LOTSE_HOME"] = str(TEST_HOME)
# Services accept the tokens of the test process's issuer (a real JWKS endpoint), as they accept a
# provider's in production.
os.environ.update(tokens.issuer().environment())
_MARKER_BY_FOLDER = {"unit": "unit", "integration": "integration", "e2e": "e2e"}
# With ``--dist loadfile`` a worker takes a whole module, except the modules that share a platform
# (tests/e2e/conftest.py): a worker takes all of one group (``pytest_xdist_make_scheduler`` below),
# so that each such platform starts once and stops after its group (not once per worker, idle until
# the session ends). Two browser groups: one would be the whole run's longest path.
SHARED_PLATFORM_GROUPS = {
    "e2e/test_journeys.py": "e2e-platform",
    "e2e/test_faults.py": "e2e-platform",
    "e2e/test_replicas.py": "e2e-platform",
    "e2e/test_profile_browser.py": "browser-volunteers",
    "e2e/test_portal_browser.py": "browser-volunteers",
    "e2e/test_questions_browser.py": "browser-volunteers",
    "e2e/test_office_browser.py": "browser-office",
    "e2e/test_console_browser.py": "browser-office",
    "e2e/test_hours_browser.py": "browser-office",
    "e2e/test_office_volunteers_browser.py": "browser-office",
}
# The longest work first (workers are given groups in collection order, ``--no-loadscope-reorder``),
# the many short unit tests last, where they fill the gaps.
_FOLDER_ORDER = {"e2e": 0, "integration": 1, "unit": 2}


def group_of(module: Path) -> str:
    """The group a test module runs in: its platform group, else the module alone."""
    name = module.relative_to(TESTS).as_posix()
    return SHARED_PLATFORM_GROUPS.get(name, name)


def group_of_item(item: pytest.Item) -> str:
    return group_of(item.path)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(item.fspath).relative_to(TESTS).parts[0]
        if folder in _MARKER_BY_FOLDER:
            item.add_marker(_MARKER_BY_FOLDER[folder])
    collected = {group: index for index, group in enumerate(dict.fromkeys(map(group_of_item, items)))}

    def position(item: pytest.Item) -> tuple[int, int, int]:
        folder = Path(item.fspath).relative_to(TESTS).parts[0]
        group = group_of_item(item)
        shared = group in SHARED_PLATFORM_GROUPS.values()
        return (_FOLDER_ORDER.get(folder, 1), 0 if shared else 1, collected[group])

    items.sort(key=position)  # stable: a module's tests stay together and in order


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` by groups: a module, or all modules of a shared platform. (xdist's own
    ``loadgroup`` names the group in the test's node id, which pytest 9.2 no longer lets it change:
    its groups fell apart into single tests.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(config.rootpath / nodeid.split("::", 1)[0])

    return ByGroup(config, log)


def pytest_unconfigure() -> None:
    shutil.rmtree(TEST_HOME, ignore_errors=True)


def pytest_report_header() -> list[str]:
    from lotse_devstack.stack import choose_backend

    return [f"lotse stack backend: {choose_backend()}"]


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with running_stack() as running:
        # As `lotse up` does: the catalogue's topics exist before any service starts, so that no
        # broker auto-creates one with other partitions (tests create tenants' topics themselves).
        asyncio.run(ensure_topics(running.kafka_bootstrap, topics_for_tenants([])))
        yield running


@pytest.fixture
def kafka_bootstrap(stack: Stack) -> str:
    return stack.kafka_bootstrap


@pytest.fixture
async def mongo_client(stack: Stack) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url, tz_aware=True)
    yield client
    await client.close()


@pytest.fixture
async def database(mongo_client: AsyncMongoClient[dict[str, Any]]) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """A database of its own for each test, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield mongo_client[name]
    await mongo_client.drop_database(name)


@pytest.fixture
def unique_name() -> str:
    """A short unique suffix for topics and tenants, so tests do not see each other's data."""
    return uuid.uuid4().hex[:10]
