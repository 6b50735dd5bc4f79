"""A webhook receiver chooses its answer, so it cannot make a delivery read without end: only the
status is read, never the body (which may be endless), and one deadline bounds the whole exchange
(a receiver trickling its headers byte by byte never trips httpx's per-read timeout). A real
receiver on a loopback socket (development mode allows plain http to loopback)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import pytest

from lotse_notifications.channels import SendFailed, WebhookChannel
from lotse_notifications.settings import NotificationSettings
from lotse_runtime.destinations import IPAddress, system_resolver

BODY_BYTES = 64 * 1024 * 1024  # more than loopback socket buffers hold, so reading it shows
CHUNK = b"x" * (1024 * 1024)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _loopback(host: str, port: int) -> list[IPAddress]:
    return await system_resolver("127.0.0.1", port)


@asynccontextmanager
async def receiver(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/hook"


async def _request_read(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
    )
    await reader.readexactly(length)


def channel(tmp_path: Path, timeout: float) -> WebhookChannel:
    settings = NotificationSettings(env="development", home=tmp_path, delivery_timeout_seconds=timeout)
    return WebhookChannel(settings, _loopback)


async def test_a_delivery_reads_the_status_and_never_the_receivers_body(tmp_path: Path) -> None:
    written = 0
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def endless_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal written
        try:
            await _request_read(reader)
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {BODY_BYTES}\r\n\r\n".encode())
            while written < BODY_BYTES:
                writer.write(CHUNK)
                await writer.drain()  # waits while the client does not read
                written += len(CHUNK)
        except ConnectionError:
            pass
        finally:
            writer.close()
            done.set_result(written)

    webhook = channel(tmp_path, timeout=30)
    try:
        async with receiver(endless_answer) as url:
            await webhook.send(url, "s" * 32, b"{}", delivery_id="d1", event_type="t")
            sent = await asyncio.wait_for(done, timeout=60)
    finally:
        await webhook.close()
    assert sent < BODY_BYTES  # the connection was closed after the status line and headers


async def test_a_receiver_trickling_its_headers_is_a_timeout_within_the_delivery_deadline(tmp_path: Path) -> None:
    stop = asyncio.Event()

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_read(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        try:
            while not stop.is_set():  # a header line every 0.2 s: each read is well within httpx's timeout
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
                await _pause(stop, 0.2)
        except ConnectionError:
            pass
        finally:
            writer.close()

    webhook = channel(tmp_path, timeout=1.0)
    try:
        async with receiver(trickle) as url:
            with pytest.raises(SendFailed) as failed:
                await asyncio.wait_for(webhook.send(url, "s" * 32, b"{}", delivery_id="d2", event_type="t"), timeout=60)
            stop.set()
    finally:
        await webhook.close()
    assert failed.value.code == "webhook_timeout" and not failed.value.permanent


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Waits until ``stop`` or ``seconds``, whichever is first (the receiver's pace, not a test wait)."""
    with suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
