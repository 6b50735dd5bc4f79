"""A service's entry point (``python -m lotse_<service>``) as a process of its own, the way it
runs in production, with its settings in the environment and its output in a log file."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient

from lotse_devstack import Stack
from lotse_devstack.processes import free_port
from tests.support.waiting import eventually


@dataclass
class ServiceProcess:
    popen: subprocess.Popen[bytes]
    url: str
    log: Path

    @classmethod
    def start(cls, service: str, settings: Mapping[str, str], log: Path) -> ServiceProcess:
        """Start ``lotse_<service>`` on a free port with ``settings`` (LOTSE_* variables)."""
        port = free_port()
        # Development mode and the session's home (tests/conftest.py) unless ``settings`` say otherwise.
        development = {"LOTSE_ENV": "development", "LOTSE_HOME": os.environ["LOTSE_HOME"]}
        environment = {
            **os.environ,
            **development,
            "PYTHONUNBUFFERED": "1",
            **settings,
            "LOTSE_HTTP_PORT": str(port),
        }
        with log.open("wb") as output:
            popen = subprocess.Popen(
                [sys.executable, "-m", f"lotse_{service}"], env=environment, stdout=output, stderr=subprocess.STDOUT
            )
        return cls(popen, f"http://127.0.0.1:{port}", log)

    async def ready(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:

            async def answers() -> bool:
                try:
                    return (await http.get("/ready")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(answers, timeout=60, interval=0.1, what=f"{self.log.stem} to be ready")

    def logged(self, event: str) -> list[dict[str, Any]]:
        """The JSON log entries of ``event`` so far."""
        entries = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("event") == event:
                    entries.append(entry)
        return entries

    async def logs(self, event: str) -> dict[str, Any]:
        async def found() -> list[dict[str, Any]]:
            return self.logged(event)

        (entry, *_) = await eventually(found, timeout=30, what=f"{self.log.stem} to log {event!r}")
        return entry

    async def exits_within(self, seconds: float) -> int:
        async def exited() -> bool:
            return self.popen.poll() is not None

        await eventually(exited, timeout=seconds, what=f"{self.log.stem} to exit")
        return self.popen.returncode

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


@contextmanager
def service_process(service: str, stack: Stack, log_dir: Path, **settings: str) -> Iterator[ServiceProcess]:
    """``lotse_<service>`` against the test stack with a database and consumer groups of its own
    (``settings`` add to or override them); killed and its database dropped afterwards."""
    run = uuid.uuid4().hex[:8]
    environment = {
        "LOTSE_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "LOTSE_MONGO_URL": stack.mongo_url,
        "LOTSE_DATABASE": f"{service}_process_{run}",
        "LOTSE_CONSUMER_GROUP": f"{service}-process-{run}",
        # The person keys too (ignored by the registry): a group shared with an earlier process
        # would start after the keys that process kept in its own database.
        "LOTSE_PERSON_KEYS_CONSUMER_GROUP": f"{service}-process-keys-{run}",
        **settings,
    }
    process = ServiceProcess.start(service, environment, log_dir / f"{service}.log")
    try:
        yield process
    finally:
        process.kill()
        client: MongoClient[dict[str, Any]] = MongoClient(stack.mongo_url)
        with client:
            client.drop_database(environment["LOTSE_DATABASE"])
