"""The portal's sessions against the real local OpenID provider and SecantusDB: a person signs in
through the provider's login page, and the session survives what a hostile review found could end
it or bring it back.

- Two requests of one session that find the access token expired at the same time (two tabs, on
  two replicas of the portal) refresh it once. The local provider rotates refresh tokens and ends
  the whole grant when a used one comes again, so a second refresh would sign the person out.
- A session deleted (sign-out, erasure) while a request of it is still running stays deleted.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from lotse_devstack import Stack
from lotse_portal.app import create_app
from lotse_portal.settings import PortalSettings
from lotse_portal.store import Session, Store, session_key, unseal
from lotse_runtime.auth import Role
from tests.support.idp import PORTAL_CALLBACK, TestIdp, account, local_idp

MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")
COOKIE = "lotse_session"  # development: no __Host- prefix, no Secure


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestIdp]:
    # A coordinator: /home answers them without calls to the services (none run here).
    with local_idp(tmp_path_factory.mktemp("idp"), [account("office", Role.COORDINATOR, "sessions")]) as running:
        yield running


def portal_settings(stack: Stack, idp: TestIdp, database: str) -> PortalSettings:
    return PortalSettings(
        jwt_issuer=idp.issuer,
        jwt_jwks_url=idp.idp.jwks_url,
        oidc_client_secret=idp.portal.secret,
        # The redirect URI the provider knows for the portal (nothing listens there: the test takes
        # the code from the redirect and hands it to the portal itself).
        public_url=PORTAL_CALLBACK.removesuffix("/signin/callback"),
        mongo_url=stack.mongo_url,
        database=database,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def replicas(stack: Stack, idp: TestIdp) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two replicas of the portal on one database, each with its own clients and locks."""
    database = f"portal_{uuid.uuid4().hex[:10]}"
    apps: list[FastAPI] = [create_app(portal_settings(stack, idp, database)) for _ in range(2)]
    async with AsyncExitStack() as running:
        clients = []
        for number, app in enumerate(apps):
            await running.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            clients.append(
                await running.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url=f"http://portal-{number}")
                )
            )
        yield clients
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url)
    await mongo.drop_database(database)
    await mongo.close()


async def sign_in(portal: httpx.AsyncClient, idp: TestIdp, username: str) -> str:
    """Through the portal and the provider's login page, as a browser would; the session id."""
    back = await signed_in(portal, idp, username, "/home")
    assert (back.status_code, back.headers["location"]) == (303, "/home"), back.text
    session_id = portal.cookies[COOKIE]
    assert session_id
    return session_id


async def signed_in(portal: httpx.AsyncClient, idp: TestIdp, username: str, next_path: str) -> httpx.Response:
    """A whole sign-in started with ``next_path``: the portal's answer to the provider's callback."""
    started = await portal.get("/signin", params={"next": next_path})
    assert started.status_code == 303, started.text
    async with httpx.AsyncClient(follow_redirects=False, timeout=15.0) as browser:
        page = await browser.get(started.headers["location"])
        while page.status_code in (302, 303):
            page = await browser.get(urljoin(str(page.url), page.headers["location"]))
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert action is not None, page.text[:300]
        password = idp.accounts[username].password
        answer = await browser.post(
            urljoin(str(page.url), action.group(1)), data={"login": username, "password": password or ""}
        )
        while not answer.headers["location"].startswith(PORTAL_CALLBACK):
            answer = await browser.get(urljoin(str(answer.url), answer.headers["location"]))
    return await portal.get("/signin/callback?" + urlsplit(answer.headers["location"]).query)


def mongo_database(stack: Stack, portal: httpx.AsyncClient) -> AsyncDatabase[dict[str, Any]]:
    transport = portal._transport
    assert isinstance(transport, httpx.ASGITransport)
    app: Any = transport.app
    database: AsyncDatabase[dict[str, Any]] = app.state.mongo[app.state.settings.database]
    return database


async def expire_access_token(database: AsyncDatabase[dict[str, Any]], session_id: str) -> None:
    """As if the access token had run out: the stored expiry in the past (the token itself is left)."""
    moved = await database["sessions"].update_one(
        {"_id": session_key(session_id)}, {"$set": {"user.expires_at": datetime.now(UTC) - timedelta(minutes=5)}}
    )
    assert moved.matched_count == 1


async def stored_refresh_token(database: AsyncDatabase[dict[str, Any]], session_id: str) -> str:
    document = await database["sessions"].find_one({"_id": session_key(session_id)})
    assert document is not None and document["user"] is not None
    return unseal(session_id, document["user"]["refresh_token"])


@MODULE_LOOP
async def test_two_tabs_on_two_replicas_that_find_the_token_expired_refresh_it_once(
    stack: Stack, idp: TestIdp, replicas: list[httpx.AsyncClient]
) -> None:
    first, second = replicas
    session_id = await sign_in(first, idp, "office")
    second.cookies.set(COOKIE, session_id)
    database = mongo_database(stack, first)
    signed_in_with = await stored_refresh_token(database, session_id)

    for _ in range(2):  # the refreshed grant refreshes again: no second use of a refresh token ended it
        await expire_access_token(database, session_id)
        answers = await asyncio.gather(first.get("/home"), second.get("/home"), first.get("/home"))
        for answer in answers:  # still signed in: the page, or where it sends a coordinator
            assert answer.status_code in (200, 303), answer.status_code
            assert not answer.headers.get("location", "").startswith("/signin"), answer.headers["location"]
        document = await database["sessions"].find_one({"_id": session_key(session_id)})
        assert document is not None
        assert document["user"]["expires_at"].replace(tzinfo=UTC) > datetime.now(UTC) + timedelta(minutes=5)
    assert await stored_refresh_token(database, session_id) != signed_in_with


@MODULE_LOOP
async def test_a_request_that_saves_after_sign_out_does_not_bring_the_session_back(
    stack: Stack, idp: TestIdp, replicas: list[httpx.AsyncClient]
) -> None:
    first, _ = replicas
    session_id = await sign_in(first, idp, "office")
    database = mongo_database(stack, first)
    store = Store(database)
    in_flight = await store.load(session_id)
    assert in_flight is not None and in_flight.user is not None
    await store.delete(session_id)  # signed out (or erased) meanwhile

    # The request still running saves what it changed: nothing is created.
    assert not await store.update(replace(in_flight, language="en"), {"language"})
    assert not await store.store_refreshed(in_flight)
    assert await database["sessions"].find_one({"_id": session_key(session_id)}) is None
    # ... and the portal sends that browser to sign in again, with a language picked on the way.
    answer = await first.get("/home", params={"lang": "en"})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/signin")
    assert await database["sessions"].find_one({"_id": session_key(session_id)}) is None


async def test_a_new_session_is_created_once_and_only_updated_after(database: AsyncDatabase[dict[str, Any]]) -> None:
    store = Store(database)
    session = Session.new(timedelta(hours=1))
    await store.create(session)
    assert await store.update(replace(session, language="tr"), {"language"})
    loaded = await store.load(session.id)
    assert loaded is not None and loaded.language == "tr"
    await store.delete(session.id)
    assert not await store.update(replace(session, language="uk"), {"language"})
    assert await store.load(session.id) is None
    assert await database["sessions"].count_documents({}) == 0


@MODULE_LOOP
@pytest.mark.parametrize(
    "hostile", ["//evil.example", "https://evil.example/", "/\\evil.example", "/\\/evil.example", "http:evil.example"]
)
async def test_a_sign_in_started_with_a_hostile_next_ends_on_the_portal(
    idp: TestIdp, replicas: list[httpx.AsyncClient], hostile: str
) -> None:
    """The whole way back from the provider: where the callback sends the browser is the portal's
    own path (browsers read a backslash as a slash, so /\\evil.example is another host)."""
    portal = replicas[0]
    portal.cookies.clear()
    back = await signed_in(portal, idp, "office", hostile)
    assert back.status_code == 303, back.text
    location = back.headers["location"]
    target = urlsplit(urljoin("https://portal.example/", location.replace("\\", "/")))
    assert target.netloc == "portal.example" and location.startswith("/"), location
    assert "evil.example" not in location


@MODULE_LOOP
async def test_outside_development_the_session_cookie_is_secure_and_host_prefixed(stack: Stack, idp: TestIdp) -> None:
    """The settings the portal runs with in production (LOTSE_ENV=production, every secret set):
    the cookie is sent over HTTPS only and, by its __Host- prefix, set by this host for all its
    paths, never by a subdomain."""
    database = f"portal_{uuid.uuid4().hex[:10]}"
    settings = portal_settings(stack, idp, database).model_copy(update={"env": "production", "cookie_secure": None})
    production = PortalSettings.model_validate(settings.model_dump())  # validated as production
    assert production.env == "production" and production.secure_cookie()
    app = create_app(production)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://portal") as portal:
            started = await portal.get("/signin", params={"next": "/home"})
            assert started.status_code == 303, started.text
            cookies = started.headers.get_list("set-cookie")
            session = [cookie for cookie in cookies if cookie.startswith("__Host-lotse_session=")]
            assert len(session) == 1, cookies
            attributes = {part.strip().split("=")[0].lower() for part in session[0].split(";")[1:]}
            assert {"secure", "httponly", "samesite", "path"} <= attributes and "domain" not in attributes
            assert "path=/" in session[0].lower() and "samesite=lax" in session[0].lower()
            chosen = await portal.get("/", params={"lang": "en"})
            language = [
                cookie for cookie in chosen.headers.get_list("set-cookie") if cookie.startswith("lotse_language=")
            ]
            assert language and "secure" in language[0].lower()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url)
    await mongo.drop_database(database)
    await mongo.close()
