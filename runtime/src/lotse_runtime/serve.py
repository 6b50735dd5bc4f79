"""Run a service process: logs, traces and instrumentation, then its FastAPI app under uvicorn until SIGTERM.

Shutdown on SIGTERM (or Ctrl+C): uvicorn stops accepting connections and lets open requests end,
then runs the app's lifespan shutdown, where each service stops taking messages, lets the message
in hand finish and commits it, stops its outbox relay after the batch in hand and closes its
clients (each step bounded by ``LOTSE_SHUTDOWN_GRACE_SECONDS``). Whatever hangs beyond that, the
process still exits: a watchdog ends it ``CLOSE_SECONDS`` after the grace, counted from the
signal. What it cuts off is uncommitted and is done again after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TypeVar

import structlog
import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE

from lotse_runtime.settings import PlatformSettings
from lotse_runtime.structured_logging import configure_logging
from lotse_runtime.tracing import configure_tracing, instrument_app, instrument_libraries

SettingsT = TypeVar("SettingsT", bound=PlatformSettings)

# Closing clients after the grace: leaving the consumer group, flushing the producer, the database.
CLOSE_SECONDS = 10.0
# The exit status when the watchdog had to end the process.
OVERRAN_EXIT_CODE = 70

log = structlog.get_logger("lotse.serve")


class _BoundedServer(uvicorn.Server):
    """uvicorn's server, with a watchdog armed by the first exit signal."""

    def __init__(self, config: uvicorn.Config, exit_bound_seconds: float) -> None:
        super().__init__(config)
        self.exit_bound_seconds = exit_bound_seconds
        self._watchdog: threading.Timer | None = None
        self._requested_at = 0.0

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._watchdog is None:
            self._requested_at = time.monotonic()
            # A thread, so that it fires even if the event loop is blocked.
            self._watchdog = threading.Timer(self.exit_bound_seconds, self._overran)
            self._watchdog.daemon = True
            self._watchdog.start()
            # Logged from the loop: writing to stdout inside a signal handler may re-enter a write.
            with contextlib.suppress(RuntimeError):  # no loop yet: nothing to log to
                asyncio.get_running_loop().call_soon_threadsafe(self._log_requested, sig)
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        took = time.monotonic() - self._requested_at if self._requested_at else None
        log.info("shutdown complete", took_seconds=round(took, 2) if took is not None else None)

    def _log_requested(self, sig: int) -> None:
        log.info("shutdown requested", signal=signal.Signals(sig).name, exit_bound_seconds=self.exit_bound_seconds)

    def _overran(self) -> None:
        log.error("shutdown outlasted its bound, exiting now", exit_bound_seconds=self.exit_bound_seconds)
        os._exit(OVERRAN_EXIT_CODE)


def serve(service: str, settings: SettingsT, create_app: Callable[[SettingsT], FastAPI], host: str, port: int) -> None:
    configure_logging(service, settings.log_level, settings.log_format)
    configure_tracing(service)
    instrument_libraries()  # before the app's lifespan creates its clients
    app = create_app(settings)
    instrument_app(app)
    grace = settings.shutdown_grace_seconds
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # uvicorn's own logging config would replace the JSON logs, and its access log prints the
        # raw path (answer-link tokens) and the client address: http_guards.AccessLog replaces it.
        log_config=None,
        access_log=False,
        # Open HTTP requests get the grace too; the lifespan shutdown starts after them.
        timeout_graceful_shutdown=max(1, int(grace)),
    )
    server = _BoundedServer(config, exit_bound_seconds=grace + CLOSE_SECONDS)
    # As uvicorn.run does: Ctrl+C ends quietly, a failed startup exits non-zero.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
