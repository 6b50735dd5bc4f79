"""The HTTP guards every service installs, on a small app: security headers, the body limit, the
access log and the rate limit of public endpoints."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, MutableMapping
from typing import Any, cast

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from structlog.testing import capture_logs
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from lotse_matching.settings import MatchingSettings
from lotse_notifications.settings import NotificationSettings
from lotse_registry.settings import RegistrySettings
from lotse_runtime.auth import Role, TokenVerifier
from lotse_runtime.http_guards import (
    HttpGuardSettings,
    install_http_guards,
    public_rate_limit,
    public_rate_limit_per,
)
from lotse_runtime.problems import PROBLEM_JSON, install_problem_handlers
from tests.support import tokens
from tests.support.waiting import eventually

LIMIT = 2048


class Note(BaseModel):
    text: str


def make_app(**settings: Any) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    install_http_guards(app, HttpGuardSettings(**{"max_body_bytes": LIMIT, **settings}))

    @app.get("/answers/{token}", response_class=HTMLResponse)
    async def page(token: str) -> HTMLResponse:
        return HTMLResponse("<!doctype html><p>page</p>")

    @app.post("/notes")
    async def note(body: Note) -> dict[str, int]:
        return {"length": len(body.text)}

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("a bug")

    @app.get("/public", dependencies=[Depends(public_rate_limit)])
    async def public() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/feeds/{secret}", dependencies=[Depends(public_rate_limit_per(lambda r: r.path_params["secret"]))])
    async def feed(secret: str) -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/style.css")
    async def stylesheet() -> Response:
        return Response("p {}", media_type="text/css", headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/cached-page", response_class=HTMLResponse)
    async def cached_page() -> HTMLResponse:
        return HTMLResponse("<!doctype html><p>page</p>", headers={"Cache-Control": "public, max-age=60"})

    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://guarded.test")


async def test_every_response_is_nosniff_and_pages_are_not_stored_framed_or_referred() -> None:
    async with client(make_app()) as http:
        page = await http.get("/answers/abc")
        api = await http.post("/notes", json={"text": "hello"})
        missing = await http.get("/nowhere")
    for response in (page, api, missing):
        assert response.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    policy = {part.split()[0]: part.split()[1:] for part in page.headers["content-security-policy"].split("; ")}
    assert policy["default-src"] == ["'none'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert "script-src" not in policy
    assert "content-security-policy" not in api.headers


async def test_other_answers_keep_the_cache_control_of_their_route_and_are_not_stored_without_one() -> None:
    async with client(make_app()) as http:
        stylesheet = await http.get("/style.css")
        api = await http.post("/notes", json={"text": "about a person"})
        page = await http.get("/cached-page")
    assert stylesheet.headers["cache-control"] == "public, max-age=86400"
    assert api.headers["cache-control"] == "no-store"
    assert page.headers["cache-control"] == "no-store"  # a page is never kept, whatever its route says
    assert stylesheet.headers["x-content-type-options"] == api.headers["x-content-type-options"] == "nosniff"
    assert "referrer-policy" not in stylesheet.headers and page.headers["referrer-policy"] == "no-referrer"


async def test_an_app_answers_a_body_too_large_its_own_way_with_the_headers_of_its_pages() -> None:
    async def page(request: Request, status: int, title: str, detail: str) -> Response:
        return HTMLResponse(f"<!doctype html><h1>{status}</h1>", status_code=status)

    app = FastAPI()
    install_http_guards(app, HttpGuardSettings(max_body_bytes=LIMIT), error_answer=page)

    @app.post("/form")
    async def form(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    async with client(app) as http:
        refused = await http.post("/form", content=b"x" * (LIMIT + 1))
    assert refused.status_code == 413 and refused.text == "<!doctype html><h1>413</h1>"
    assert refused.headers["content-security-policy"].startswith("default-src 'none'")


async def test_an_unexpected_error_and_every_other_refusal_is_nosniff_too() -> None:
    # The 500 comes from Starlette's outermost middleware, outside those an app adds.
    transport = httpx.ASGITransport(app=make_app(public_rate_limit="1 per 1 minute"), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://guarded.test") as http:
        responses = [
            await http.get("/broken"),
            await http.delete("/notes"),
            await http.post("/notes", json={"text": "x" * LIMIT}),
            await http.get("/public"),
            await http.get("/public"),
        ]
    assert [response.status_code for response in responses] == [500, 405, 413, 200, 429]
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff", response.status_code


async def test_the_docs_page_gets_a_policy_that_lets_it_load_and_still_cannot_be_framed() -> None:
    async with client(make_app()) as http:
        docs = await http.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["cache-control"] == "no-store"
    policy = docs.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "https://cdn.jsdelivr.net" in policy


async def test_a_body_declared_too_large_is_refused_before_any_of_it_is_read() -> None:
    app = make_app()
    received: list[dict[str, Any]] = []
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        received.append({})
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/raw",
        "raw_path": b"/raw",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"guarded.test"), (b"content-length", str(10**9).encode())],
        "client": ("203.0.113.7", 4711),
        "server": ("guarded.test", 80),
        "state": {},
    }
    await app(scope, receive, send)
    assert received == []
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    assert (b"content-type", PROBLEM_JSON.encode()) in start["headers"]


@pytest.mark.parametrize("path", ["/notes", "/raw"])
async def test_a_streamed_body_without_a_length_is_counted_and_refused_past_the_limit(path: str) -> None:
    chunks_sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        yield b'{"text": "'
        for _ in range(100):
            chunks_sent += 1
            yield b"y" * 512
        yield b'"}'

    async with client(make_app()) as http:
        refused = await http.post(path, content=body(), headers={"content-type": "application/json"})
        within = await http.post(path, json={"text": "y" * (LIMIT // 2)})
    assert refused.status_code == 413, refused.text
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert refused.json()["status"] == 413
    assert chunks_sent < 10  # it stopped reading soon after the limit
    assert within.status_code == 200


async def test_the_access_log_names_the_route_never_the_path_query_or_client() -> None:
    token = "eyJwIjoiMTIzIn0.c2lnbmF0dXJl"
    async with client(make_app()) as http:
        with capture_logs() as logs:
            await http.get(f"/answers/{token}", params={"choice": "accept", "secret": "q"})
            await http.get(f"/unknown/{token}")
    entries = [entry for entry in logs if entry["event"] == "http request"]
    assert [(e["method"], e["route"], e["status"]) for e in entries] == [
        ("GET", "/answers/{token}", 200),
        ("GET", "(unmatched)", 404),
    ]
    assert all(isinstance(e["duration_ms"], float) for e in entries)
    assert token not in repr(logs) and "choice" not in repr(logs) and "127.0.0.1" not in repr(logs)
    assert all("client_ip" not in e for e in entries)


async def test_the_client_address_is_logged_only_when_asked_for() -> None:
    app = make_app(access_log_client_ip=True)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 4711)), base_url="http://guarded.test"
    ) as http:
        with capture_logs() as logs:
            await http.get("/answers/abc")
    (entry,) = [entry for entry in logs if entry["event"] == "http request"]
    assert entry["client_ip"] == "203.0.113.7"


async def test_a_public_endpoint_answers_429_with_retry_after_past_the_limit_and_again_after_the_window() -> None:
    app = make_app(public_rate_limit="2 per 1 second")
    async with client(app) as http:
        assert [(await http.get("/public")).status_code for _ in range(2)] == [200, 200]
        refused = await http.get("/public")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == PROBLEM_JSON
        assert 1 <= int(refused.headers["retry-after"]) <= 1

        async def allowed_again() -> bool:
            return (await http.get("/public")).status_code == 200

        await eventually(allowed_again, timeout=10, interval=0.2, what="the endpoint to answer again")


async def test_the_addresses_of_one_ipv6_network_share_one_quota() -> None:
    # An IPv6 subscriber has a /64 of its own: one quota per address would be 2**64 quotas.
    app = make_app(public_rate_limit="1 per 1 minute")

    async def status(host: str) -> int:
        transport = httpx.ASGITransport(app=app, client=(host, 4711))
        async with httpx.AsyncClient(transport=transport, base_url="http://guarded.test") as http:
            return (await http.get("/public")).status_code

    assert await status("2001:db8:1:2::1") == 200
    assert await status("2001:db8:1:2:ffff::7") == 429  # same /64
    assert await status("2001:db8:1:3::1") == 200  # the next /64
    assert await status("203.0.113.9") == 200
    assert await status("::ffff:203.0.113.9") == 429  # the same IPv4 client, as a mapped address


async def test_requests_with_a_verified_token_count_for_its_subject_not_the_address() -> None:
    # All the portal's users reach a service from the portal's one address: each counts for itself.
    app = make_app(public_rate_limit="2 per 1 minute")
    app.state.token_verifier = TokenVerifier(tokens.issuer().auth_config())
    anna, ben = (tokens.issue(str(uuid.uuid4()), [Role.VOLUNTEER], tenant="lindenau") for _ in range(2))

    async def status(token: str | None, host: str = "10.0.0.5") -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        transport = httpx.ASGITransport(app=app, client=(host, 4711))
        async with httpx.AsyncClient(transport=transport, base_url="http://guarded.test") as http:
            return (await http.get("/public", headers=headers)).status_code

    assert [await status(anna) for _ in range(3)] == [200, 200, 429]
    assert [await status(ben) for _ in range(2)] == [200, 200]  # the same address, another person
    assert await status(anna, host="198.51.100.7") == 429  # the same person from elsewhere
    # Without a token, or with one that does not verify: by address, as before.
    assert [await status(None) for _ in range(2)] == [200, 200]
    assert await status("not-a-token") == 429
    assert await status("not-a-token", host="198.51.100.7") == 200


@pytest.mark.parametrize(("peer", "separate"), [("10.1.2.3", True), ("192.0.2.50", False)])
async def test_behind_a_trusted_proxy_each_forwarded_address_counts_and_behind_another_none_does(
    peer: str, separate: bool
) -> None:
    """How the services and the portal run (lotse_runtime.serve: uvicorn with proxy headers): the
    address a proxy forwards counts only when the proxy is trusted (FORWARDED_ALLOW_IPS); an
    untrusted peer cannot buy itself allowances by naming other addresses."""
    app = make_app(public_rate_limit="1 per 1 minute")
    # uvicorn types ASGI apps more narrowly than Starlette and httpx do; they are the same apps.
    behind_proxy: Any = ProxyHeadersMiddleware(cast(Any, app), trusted_hosts="10.1.0.0/16")
    transport = httpx.ASGITransport(app=behind_proxy, client=(peer, 4711))
    async with httpx.AsyncClient(transport=transport, base_url="http://guarded.test") as http:
        statuses = [
            (await http.get("/public", headers={"X-Forwarded-For": visitor})).status_code
            for visitor in ("203.0.113.1", "203.0.113.2", "203.0.113.1")
        ]
    assert statuses == ([200, 200, 429] if separate else [200, 429, 429])


def test_a_rate_limit_that_does_not_parse_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="public_rate_limit"):
        HttpGuardSettings(public_rate_limit="lots")


def test_every_service_limits_bodies_and_notifications_takes_a_template_of_the_largest_size() -> None:
    for settings in (MatchingSettings, RegistrySettings):
        assert settings.model_fields["max_body_bytes"].default == 64 * 1024
    largest_template = (300 + 20_000 + 50_000) * len("\\u0627") + 1024  # every character escaped
    assert NotificationSettings.model_fields["max_body_bytes"].default >= largest_template


async def test_a_limit_per_key_gives_each_key_its_own_allowance_whoever_asks() -> None:
    # A calendar feed fetched through the portal: one client address for every feed.
    app = make_app(public_rate_limit="2 per 1 minute")

    async def status(path: str, host: str) -> int:
        transport = httpx.ASGITransport(app=app, client=(host, 4711))
        async with httpx.AsyncClient(transport=transport, base_url="http://guarded.test") as http:
            answer = await http.get(path)
            if answer.status_code == 429:
                assert int(answer.headers["Retry-After"]) > 0
            return answer.status_code

    assert [await status("/feeds/a", "10.0.0.5") for _ in range(3)] == [200, 200, 429]
    assert [await status("/feeds/b", "10.0.0.5") for _ in range(2)] == [200, 200]  # same address, its own
    assert await status("/feeds/a", "198.51.100.7") == 429  # the key's allowance, from anywhere
    assert await status("/public", "10.0.0.5") == 200  # the per-caller limit counts apart
