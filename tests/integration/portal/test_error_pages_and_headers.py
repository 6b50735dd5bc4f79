"""The portal's answers to what no page of it expects, and the headers of its pages, against
SecantusDB and a provider whose discovery document sends people to sign out elsewhere than its
issuer (a real HTTP server of the test's own: the local provider keeps every endpoint on its issuer).

- A form over the body limit, an address that does not exist, a method a page does not take and
  an error in the portal itself are pages in the person's language, never JSON or plain text.
- The pages' form-action names the origin of the provider's end-session endpoint, which the
  sign-out form is redirected to.
- The stylesheet may be cached; pages and personal downloads are not.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from lotse_devstack import Stack
from lotse_devstack.processes import free_port
from lotse_portal import pages
from lotse_portal.app import create_app
from lotse_portal.backends import BackendProblem
from lotse_portal.settings import PortalSettings
from tests.support.waiting import eventually

MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")
pytestmark = MODULE_LOOP
MAX_BODY_BYTES = 2048
SIGN_OUT_ELSEWHERE = "https://logout.example.net"
TOO_LARGE = "Das war zu viel auf einmal"
NOT_FOUND = "Diese Seite gibt es nicht"
INTERNAL = "Da ist etwas schiefgegangen"
TOO_MANY = "Zu viele Anfragen"


class Discovery(BaseHTTPRequestHandler):
    """A provider's discovery document whose end-session endpoint is on another origin."""

    issuer = ""

    def do_GET(self) -> None:
        if self.path != "/.well-known/openid-configuration":
            self.send_error(404)
            return
        body = json.dumps(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/auth",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "end_session_endpoint": f"{SIGN_OUT_ELSEWHERE}/session/end",
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    port = free_port()
    handler: type[Discovery] = type("ThisDiscovery", (Discovery,), {"issuer": f"http://127.0.0.1:{port}"})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield handler.issuer
    finally:
        server.shutdown()
        server.server_close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def portal(stack: Stack, issuer: str) -> AsyncIterator[httpx.AsyncClient]:
    database = f"portal_{uuid.uuid4().hex[:10]}"
    settings = PortalSettings(
        jwt_issuer=issuer,
        jwt_jwks_url=f"{issuer}/jwks",
        mongo_url=stack.mongo_url,
        database=database,
        max_body_bytes=MAX_BODY_BYTES,
        # Nothing listens there: the start page does without the municipalities.
        registry_url="http://127.0.0.1:9",
    )
    app = create_app(settings)

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("a bug in a page")

    @app.get("/refused-as-too-many")
    async def refused_as_too_many() -> None:  # a service's 429 (a volunteer picked and stepped back too often)
        raise BackendProblem(429, "Too many requests", "retry after 60 s")

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://portal") as http:
            await eventually(lambda: _discovered(app), what="the provider's discovery document")
            yield http
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url)
    await mongo.drop_database(database)
    await mongo.close()


async def _discovered(app: FastAPI) -> bool:
    return app.state.portal.openid.known_endpoints is not None


def _is_page_in(response: httpx.Response, language: str, heading: str) -> None:
    assert response.headers["content-type"].startswith("text/html"), response.headers["content-type"]
    assert f'<html lang="{language}"' in response.text
    assert pages.translate(language, heading) in response.text, response.text[:500]
    assert response.headers["cache-control"] == "no-store"
    assert "form-action" in response.headers["content-security-policy"]


def _form_action(response: httpx.Response) -> list[str]:
    policy = response.headers["content-security-policy"]
    (directive,) = [part.split()[1:] for part in policy.split("; ") if part.startswith("form-action ")]
    return directive


async def test_the_pages_may_send_forms_to_where_the_provider_signs_people_out(
    portal: httpx.AsyncClient, issuer: str
) -> None:
    start = await portal.get("/", params={"lang": "de"})
    assert start.status_code == 200
    assert _form_action(start) == ["'self'", issuer, SIGN_OUT_ELSEWHERE]


@pytest.mark.parametrize("language", ["en", "ar", "tr"])
async def test_a_form_over_the_size_limit_is_a_page_in_the_chosen_language(
    portal: httpx.AsyncClient, language: str
) -> None:
    assert pages.translate(language, TOO_LARGE) != TOO_LARGE  # translated, not the German id
    portal.cookies.clear()
    portal.cookies.set("lotse_language", language)  # picked on an earlier page
    form = {"csrf_token": "x", "text": "x" * MAX_BODY_BYTES}
    declared = await portal.post("/signout", data=form)
    assert declared.status_code == 413
    _is_page_in(declared, language, TOO_LARGE)

    async def streamed_body() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        yield b"csrf_token=x&text="
        for _ in range(8):
            yield b"y" * 512

    streamed = await portal.post(
        "/signout",
        content=streamed_body(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413
    _is_page_in(streamed, language, TOO_LARGE)


async def test_an_unknown_address_a_wrong_method_and_a_bug_are_pages_too(portal: httpx.AsyncClient) -> None:
    portal.cookies.clear()  # no language picked: the browser's
    missing = await portal.get("/nowhere", headers={"Accept-Language": "uk"})
    assert missing.status_code == 404
    _is_page_in(missing, "uk", NOT_FOUND)
    wrong_method = await portal.delete("/", params={"lang": "fa"})
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"].startswith("text/html") and 'dir="rtl"' in wrong_method.text
    bug = await portal.get("/broken", params={"lang": "en"})
    assert bug.status_code == 500
    _is_page_in(bug, "en", INTERNAL)
    assert "a bug in a page" not in bug.text  # no trace for people
    too_many = await portal.get("/refused-as-too-many", params={"lang": "ar"})
    assert too_many.status_code == 429
    _is_page_in(too_many, "ar", TOO_MANY)  # "too many", not "that did not work"


async def test_the_stylesheet_may_be_cached_and_pages_may_not(portal: httpx.AsyncClient) -> None:
    stylesheet = await portal.get("/static/portal.css")
    assert stylesheet.status_code == 200
    assert stylesheet.headers["cache-control"].startswith("public, max-age=")
    page = await portal.get("/")
    assert page.headers["cache-control"] == "no-store"
