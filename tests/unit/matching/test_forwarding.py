"""A request about a tenant another replica matches for goes to that replica as it came
(forwarding.ToTheOwner, issue 19): the owner is a real HTTP server here that echoes what reached
it; the forwarding replica runs in process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from lotse_matching.forwarding import FORWARDED_BY, ToTheOwner
from lotse_matching.ownership import Ownership, partition_of
from tests.support.browser import served

MINE, THEIRS = "musterstadt", "lindenau"
REPLICA = "http://10.0.0.1:8002"


async def echo(request: Request) -> Response:
    if request.method == "HEAD":
        return Response(headers={"content-length": "42"})
    return JSONResponse(
        {
            "method": request.method,
            "raw_path": request.scope["raw_path"].decode(),
            "query": request.scope["query_string"].decode(),
            "headers": [[name.decode("latin-1"), value.decode("latin-1")] for name, value in request.scope["headers"]],
            "body": (await request.body()).decode(),
        },
        headers={"x-owner": "yes"},
    )


class Directory(Ownership):
    """This replica owns MINE's partition; the directory names ``owner`` for every other."""

    def __init__(self, owner: str | None) -> None:
        super().__init__(replica_url=REPLICA)
        self.assigned = frozenset({partition_of(MINE)})
        self.owner = owner

    async def owner_url(self, tenant: str) -> str | None:
        return self.owner


def replica(owner: str | None) -> httpx.AsyncClient:
    async def here(request: Request) -> Response:
        return PlainTextResponse("served here")

    app = Starlette(routes=[Route("/{path:path}", here, methods=["GET", "POST", "HEAD"])], middleware=[])
    app.add_middleware(ToTheOwner)
    app.state.ownership = Directory(owner)
    app.state.forwarding = httpx.AsyncClient()
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://matching")


@pytest_asyncio.fixture
async def owner() -> AsyncIterator[str]:
    app = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST", "HEAD"])])
    async with served(app) as url:
        yield url


async def test_a_request_about_an_own_tenant_is_served_here(owner: str) -> None:
    async with replica(owner) as http:
        answer = await http.get(f"/tenants/{MINE}/dashboard")

    assert answer.text == "served here"


async def test_another_replicas_request_reaches_it_as_it_came_and_its_answer_comes_back(owner: str) -> None:
    headers = [
        (b"X-Name", "café".encode()),
        (b"X-Forwarded-For", b"6.6.6.6"),
        (b"X-Forwarded-Proto", b"https"),
        (b"Connection", b"x-secret"),
        (b"X-Secret", b"1"),
    ]
    async with replica(owner) as http:
        answer = await http.post(f"/tenants/{THEIRS}/needs%3Fx=1%2F..?y=2", content=b"choice=accept", headers=headers)
        head = await http.head(f"/tenants/{THEIRS}/dashboard")

    assert answer.status_code == 200 and answer.headers["x-owner"] == "yes"
    seen = answer.json()
    received = {name: value for name, value in seen["headers"]}
    assert (seen["method"], seen["raw_path"], seen["query"]) == ("POST", f"/tenants/{THEIRS}/needs%3Fx=1%2F..", "y=2")
    assert seen["body"] == "choice=accept"
    assert received["x-name"] == "café".encode().decode("latin-1"), "the header's bytes, unchanged"
    # The client as this replica saw it; what the client said about itself is not passed on.
    assert received["x-forwarded-for"] == "192.0.2.7" and received["x-forwarded-proto"] == "http"
    assert received[FORWARDED_BY] == REPLICA
    assert "x-secret" not in received, "a header its Connection names belongs to that connection"
    assert head.status_code == 200 and head.headers["content-length"] == "42"


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (f"/tenants/{THEIRS}/dashboard", {FORWARDED_BY: "http://10.0.0.2:8002"}),  # sent here by a replica that erred
        (f"/tenants/{THEIRS}/dashboard", {}),  # the directory names no owner (the partition moves)
    ],
)
async def test_a_tenant_that_moves_is_answered_503_with_retry_after(path: str, headers: dict[str, str]) -> None:
    async with replica(None if not headers else "http://127.0.0.1:9") as http:
        answer = await http.get(path, headers=headers)

    assert answer.status_code == 503 and answer.headers["retry-after"] == "2"
    assert json.loads(answer.text)["detail"].startswith("the tenant's matching is moving")


async def test_an_owner_that_does_not_answer_is_503_not_an_error() -> None:
    async with replica("http://127.0.0.1:9") as http:  # nothing listens on port 9
        answer = await http.get(f"/tenants/{THEIRS}/dashboard")

    assert answer.status_code == 503 and "did not answer" in answer.json()["detail"]
