"""A real Chromium for tests of pages that people use: Playwright's async API, axe-core's
accessibility check, and an app served over real HTTP for the browser to reach.

`make test` installs what this needs (`make browser`): a Chromium (``LOTSE_CHROMIUM``, one that
Playwright installed, or the system's: Debian's ``chromium`` package) and axe-core in
``.tools/axe`` (``LOTSE_AXE_JS`` points elsewhere). Without them the browser tests fail, naming
the command that installs them: skipped, they would pass unnoticed on every machine without one.

Use in a test module (the fixtures live in the module's event loop, as the services they test)::

    pytestmark = pytest.mark.asyncio(loop_scope="module")

    async def test_the_page(phone_page: Page) -> None:
        async with served(app) as base_url:
            await phone_page.goto(f"{base_url}/answers/...")
            await assert_accessible(phone_page)

``page`` is a desktop-sized page; ``phone_page`` a phone's (360 x 740 CSS pixels, a mobile
viewport that honours the page's viewport meta, touch); ``page`` with ``indirect`` parameters
takes any ``Viewport``. Each test gets a fresh browser context (no cookies or storage carried over).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, Page, Playwright, async_playwright

from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = ROOT / ".tools" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
# The closed network refuses Chromium's own connections (updates, sync, safe browsing): without
# these it keeps trying them in the background. No sandbox: the tests run as root in CI.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
SYSTEM_CHROMIUMS = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
HOW_TO_INSTALL = (
    "`make browser` installs one (Debian/Ubuntu: the distribution's chromium package); on another "
    "machine run `uv run playwright install chromium`, or set LOTSE_CHROMIUM to a Chromium or Chrome binary"
)
BLOCKING_IMPACTS = ("serious", "critical")


@dataclass(frozen=True)
class Viewport:
    width: int
    height: int
    mobile: bool = False


DESKTOP = Viewport(1280, 800)
PHONE = Viewport(360, 740, mobile=True)


class ChromiumMissing(Exception):
    pass


def chromium_executable(playwright: Playwright) -> str:
    """LOTSE_CHROMIUM, else the Chromium Playwright installed, else the system's."""
    chosen = os.environ.get("LOTSE_CHROMIUM")
    if chosen:
        if not os.access(chosen, os.X_OK):
            raise ChromiumMissing(f"LOTSE_CHROMIUM={chosen} is not an executable file: {HOW_TO_INSTALL}")
        return chosen
    candidates = [playwright.chromium.executable_path, *SYSTEM_CHROMIUMS, shutil.which("chromium") or ""]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ChromiumMissing(f"no Chromium found (looked at {', '.join(filter(None, candidates))}): {HOW_TO_INSTALL}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        try:
            executable, problem = chromium_executable(playwright), ""
        except ChromiumMissing as missing:
            executable, problem = "", str(missing)
        if not executable:
            pytest.fail(problem, pytrace=False)  # outside the except: one message, no chained traceback
        launched = await playwright.chromium.launch(executable_path=executable, args=list(CHROMIUM_ARGS))
        yield launched
        await launched.close()


async def new_page(browser: Browser, viewport: Viewport = DESKTOP, **options: Any) -> Page:
    """A page in a context of its own; close it with ``page.context.close()``."""
    context = await browser.new_context(
        viewport={"width": viewport.width, "height": viewport.height},
        is_mobile=viewport.mobile,
        has_touch=viewport.mobile,
        **options,
    )
    return await context.new_page()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    opened = await new_page(browser, getattr(request, "param", DESKTOP))
    yield opened
    await opened.context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def phone_page(browser: Browser) -> AsyncIterator[Page]:
    opened = await new_page(browser, PHONE)
    yield opened
    await opened.context.close()


@lru_cache(maxsize=1)
def axe_source() -> str:
    path = Path(os.environ.get("LOTSE_AXE_JS") or AXE_JS)
    if not path.is_file():
        pytest.fail(f"axe-core not found at {path}: `make browser` installs it (or set LOTSE_AXE_JS)", pytrace=False)
    return path.read_text(encoding="utf-8")


async def assert_accessible(page: Page) -> None:
    """Fails on every violation of impact serious or critical that axe-core finds in the page as
    it is now, naming rule, impact, what to do and where."""
    # Evaluated through the DevTools protocol, so the page's content security policy (no scripts
    # at all) does not stop it and need not be loosened for the test.
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(axe_source())
    results = await page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    blocking = [v for v in results["violations"] if v.get("impact") in BLOCKING_IMPACTS]
    if blocking:
        lines = [f"{len(blocking)} accessibility violation(s) on {page.url}:"]
        for violation in blocking:
            targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]]
            lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}; at {targets}")
        raise AssertionError("\n".join(lines))


async def scroll_width(page: Page) -> int:
    """The page's width in CSS pixels, what a visitor may scroll sideways included."""
    width: int = await page.evaluate("() => document.documentElement.scrollWidth")
    return width


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """``app`` (ASGI) over HTTP on a free loopback port, for a browser; yields its base URL. The
    app's lifespan is the caller's (tests start their services themselves)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    # log_config=None: uvicorn would otherwise reconfigure logging for the whole test process.
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[listener]))

    async def started() -> bool:
        if task.done():
            task.result()  # raises what stopped it
        return server.started

    try:
        await eventually(started, timeout=10, what="the HTTP server started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        listener.close()
