"""One running stack: where the broker and the database answer, and how to stop them."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lotse_devstack.containers import docker_answers, start_containers
from lotse_devstack.embedded import mongo_url, start_embedded_kafka, start_embedded_mongo
from lotse_devstack.processes import ManagedProcess, free_port, port_is_free

KAFKA_URL_VARIABLE = "LOTSE_KAFKA_BOOTSTRAP"
MONGO_URL_VARIABLE = "LOTSE_MONGO_URL"
# "embedded" or "containers" forces a backend; unset means: choose as the module docstring says.
BACKEND_VARIABLE = "LOTSE_STACK_BACKEND"


class StackError(RuntimeError):
    """A server of the stack could not be started; the message says which one and why."""


@dataclass
class Stack:
    kafka_bootstrap: str
    mongo_url: str
    backend: str
    log_dir: Path
    # Only the embedded backend has processes that tests may kill and restart.
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    def describe(self) -> str:
        return (
            f"backend:  {self.backend}\n"
            f"kafka:    {self.kafka_bootstrap}\n"
            f"mongodb:  {self.mongo_url}\n"
            f"logs:     {self.log_dir}"
        )


def choose_backend() -> str:
    forced = os.environ.get(BACKEND_VARIABLE, "").strip()
    if forced:
        if forced not in {"embedded", "containers", "external"}:
            raise StackError(f"{BACKEND_VARIABLE}={forced!r}: use embedded, containers or external")
        return forced
    if os.environ.get(KAFKA_URL_VARIABLE) and os.environ.get(MONGO_URL_VARIABLE):
        return "external"
    return "containers" if docker_answers() else "embedded"


@contextmanager
def running_stack(
    *,
    data_dir: Path | None = None,
    kafka_port: int | None = None,
    mongo_port: int | None = None,
    log_dir: Path | None = None,
    kafka_advertised_port: int | None = None,
) -> Iterator[Stack]:
    """Start a broker and a database (or use given ones) and stop them on exit.

    ``data_dir`` keeps the embedded database on disk (and survives restarts); without it the
    database lives in memory. Ports default to free loopback ports. ``kafka_advertised_port``
    makes the embedded broker tell clients to connect elsewhere (a proxy in fault tests).
    """
    backend = choose_backend()
    with ExitStack() as resources:
        if log_dir is None:
            log_dir = Path(tempfile.mkdtemp(prefix="lotse-logs-"))
            resources.callback(shutil.rmtree, log_dir, ignore_errors=True)
        if backend == "external":
            kafka_url = os.environ.get(KAFKA_URL_VARIABLE)
            database_url = os.environ.get(MONGO_URL_VARIABLE)
            if not kafka_url or not database_url:
                raise StackError(f"the external backend needs {KAFKA_URL_VARIABLE} and {MONGO_URL_VARIABLE}")
            yield Stack(kafka_url, database_url, backend, log_dir)
            return
        if backend == "containers":
            try:
                bootstrap, database_url = start_containers(resources)
            except Exception as error:
                raise StackError(f"containers did not start: {error}") from error
            yield Stack(bootstrap, database_url, backend, log_dir)
            return
        stack = _start_embedded(resources, data_dir, kafka_port, mongo_port, log_dir, kafka_advertised_port)
        yield stack


def _start_embedded(
    resources: ExitStack,
    data_dir: Path | None,
    kafka_port: int | None,
    mongo_port: int | None,
    log_dir: Path,
    kafka_advertised_port: int | None,
) -> Stack:
    kafka_port = _claim_port("kafka", kafka_port)
    mongo_port = _claim_port("mongodb", mongo_port)
    try:
        kafka = start_embedded_kafka(kafka_port, log_dir, kafka_advertised_port)
    except RuntimeError as error:
        raise StackError(str(error)) from error
    resources.callback(kafka.stop)
    try:
        database = start_embedded_mongo(mongo_port, data_dir / "mongodb" if data_dir else None, log_dir)
    except RuntimeError as error:
        raise StackError(str(error)) from error
    resources.callback(database.stop)
    return Stack(
        kafka_bootstrap=f"127.0.0.1:{kafka_advertised_port or kafka_port}",
        mongo_url=mongo_url(mongo_port),
        backend="embedded",
        log_dir=log_dir,
        processes={"kafka": kafka, "mongodb": database},
    )


def _claim_port(server: str, port: int | None) -> int:
    if port is None:
        return free_port()
    if not port_is_free(port):
        raise StackError(f"{server}: port {port} on 127.0.0.1 is already in use")
    return port
