"""``python -m lotse_matching`` runs the service: health, readiness, OpenAPI, the answer pages,
and a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lotse_contracts import Envelope, to_bytes, topic_for, topics_for_tenants
from lotse_devstack import Stack, ensure_topics
from lotse_runtime import answer_links
from tests.integration.matching.support import TopicReader, opened, registered, tenant_event
from tests.support.kafka import produce
from tests.support.service_process import ServiceProcess, service_process
from tests.support.waiting import eventually


@pytest.fixture
def matching_process(stack: Stack, tmp_path: Path) -> Iterator[ServiceProcess]:
    with service_process(
        "matching", stack, tmp_path, LOTSE_PARTNER_CONSUMER_GROUP=f"matching-partner-process-{uuid.uuid4().hex[:8]}"
    ) as process:
        yield process


async def test_the_entry_point_serves_health_readiness_and_openapi_and_stops_cleanly(
    matching_process: ServiceProcess,
) -> None:
    await matching_process.ready()
    async with httpx.AsyncClient(base_url=matching_process.url, timeout=5) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        spec = (await http.get("/openapi.json")).json()
        assert spec["info"]["title"] == "Lotse matching"
        assert "/answers/{token}" in spec["paths"] and "/volunteers/me/open-needs" in spec["paths"]
        page = await http.get("/answers/not-a-token", params={"choice": "accept"})
        assert page.status_code == 400 and "ungültig" in page.text
    matching_process.popen.terminate()
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert await matching_process.exits_within(30) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in matching_process.log.read_text()


async def test_a_real_answer_link_leaves_no_token_or_client_address_in_the_log_and_the_pages_are_guarded(
    stack: Stack, tmp_path: Path
) -> None:
    """Through uvicorn, as in production: the access log names the route, never the token, the
    query or the client; an oversized body is refused unread; the answer pages are rate-limited."""
    tenant = f"m{uuid.uuid4().hex[:8]}-proc"
    await ensure_topics(stack.kafka_bootstrap, topics_for_tenants([tenant]))
    secret = secrets.token_urlsafe(32)
    settings = {
        "LOTSE_PARTNER_CONSUMER_GROUP": f"matching-partner-process-{uuid.uuid4().hex[:8]}",
        "LOTSE_ANSWER_LINK_SECRET": secret,
        "LOTSE_PUBLIC_RATE_LIMIT": "6 per 3 seconds",
    }
    reader = TopicReader(stack.kafka_bootstrap, ["lotse.matching.proposals.v1"])
    await reader.start()
    try:
        with service_process("matching", stack, tmp_path, **settings) as process:
            await process.ready()
            volunteer, need = registered(tenant), opened(tenant)
            for event in (tenant_event(tenant), volunteer, need):
                await produce(stack.kafka_bootstrap, topic_for(event.type, tenant), to_bytes(event), key=event.key)
            # Topics are not ordered: a need read before its volunteer is proposed once they arrive.
            (proposal, *_) = await eventually(
                lambda: _proposals(reader, tenant), timeout=90, what="a proposal from the process"
            )
            token = answer_links.sign(secret, str(proposal.data.proposal_id), tenant, proposal.data.expires_at)

            async with httpx.AsyncClient(base_url=process.url, timeout=10) as http:
                page = await http.get(f"/answers/{token}", params={"choice": "accept"})
                assert page.status_code == 200 and '<form method="post">' in page.text
                assert page.headers["cache-control"] == "no-store"
                assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
                done = await http.post(f"/answers/{token}", data={"choice": "accept"})
                assert done.status_code == 200 and "Vielen Dank" in done.text

                assert await _oversized_body_status(process.url) == 413

                # Before the token is read the volunteer is unknown: the page speaks the browser's language.
                english = {"Accept-Language": "en-GB,en;q=0.9,de;q=0.5"}
                statuses = [
                    (await http.get("/answers/not.ours", params={"choice": "accept"}, headers=english))
                    for _ in range(8)
                ]
                limited = next(response for response in statuses if response.status_code == 429)
                assert int(limited.headers["retry-after"]) >= 1
                assert limited.headers["content-type"].startswith("text/html")
                assert '<html lang="en"' in limited.text and "Please wait a moment" in limited.text

                async def allowed_again() -> bool:
                    return (await http.get("/answers/not.ours", params={"choice": "accept"})).status_code == 400

                await eventually(allowed_again, timeout=20, interval=0.5, what="the answer page to answer again")

            async def logged_both() -> list[dict[str, Any]]:
                entries = process.logged("http request")
                answered = [e for e in entries if e["route"] == "/answers/{token}" and e["status"] == 200]
                return entries if len(answered) >= 2 else []

            entries = await eventually(logged_both, what="the access log of both answers")
    finally:
        await reader.stop()
    log = process.log.read_text(errors="replace")
    assert token not in log and token.split(".")[1] not in log
    assert "choice=" not in log and "/answers/not.ours" not in log
    assert {(e["method"], e["status"]) for e in entries if e["route"] == "/answers/{token}"} >= {
        ("GET", 200),
        ("POST", 200),
        ("GET", 429),
    }
    assert all("client_ip" not in e and "127.0.0.1" not in json.dumps(e) for e in entries)


async def _proposals(reader: TopicReader, tenant: str) -> list[Envelope[Any]]:
    return [e for e in reader.events(tenant) if e.type.endswith(".proposed.v1")]


async def _oversized_body_status(url: str) -> int:
    """Announces a body far beyond the limit and sends none of it: the answer must come anyway."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /answers/abc.def HTTP/1.1\r\nHost: matching\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 100000000\r\n\r\n"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    finally:
        writer.close()
    return int(status_line.split()[1])
