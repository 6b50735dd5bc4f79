"""The portal's calls to the services survive a keep-alive connection the service closes just as a
request goes out on it (uvicorn closes idle connections after 5 s): a read goes again on a new
connection, a write is never sent twice. A fresh-clone run met it as a 503 page on the console."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from lotse_portal.backends import Backends, BackendUnavailable, Service
from lotse_portal.settings import PortalSettings


class ClosingServer:
    """Answers the first request of each connection and keeps it alive, then closes that
    connection without an answer when the next request arrives on it."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered = False
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.lower().split(b"\r\n")
            length = next((int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length")), 0)
            if length:
                await reader.readexactly(length)
            self.requests.append(head.split(b" ")[0].decode())
            if answered:
                writer.close()
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
            answered = True


@pytest.fixture
async def backends() -> AsyncIterator[tuple[Backends, ClosingServer]]:
    server = ClosingServer()
    port = await server.start()
    settings = PortalSettings.model_construct(
        registry_url=f"http://127.0.0.1:{port}",
        matching_url=f"http://127.0.0.1:{port}",
        notifications_url=f"http://127.0.0.1:{port}",
    )
    async with httpx.AsyncClient(timeout=5) as http:
        yield Backends(settings, http), server
    assert server.server is not None
    server.server.close()


async def test_a_read_goes_again_on_a_new_connection(backends: tuple[Backends, ClosingServer]) -> None:
    calls, server = backends
    assert await calls.call(Service.REGISTRY, "GET", "/a", "token") == {}
    # The pooled connection is reused, closed by the server without an answer, and the read repeated.
    assert await calls.call(Service.REGISTRY, "GET", "/b", "token") == {}
    assert server.requests == ["GET", "GET", "GET"]


async def test_a_write_is_not_sent_twice(backends: tuple[Backends, ClosingServer]) -> None:
    calls, server = backends
    assert await calls.call(Service.REGISTRY, "GET", "/a", "token") == {}
    with pytest.raises(BackendUnavailable):
        await calls.call(Service.REGISTRY, "POST", "/b", "token", json={"x": 1})
    assert server.requests == ["GET", "POST"]
