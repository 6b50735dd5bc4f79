"""``lotse up``: bring up the local platform and keep it running until Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path

import typer

from lotse_contracts import topics_for_tenants
from lotse_devstack import StackError, ensure_topics, running_stack

DEFAULT_STATE_DIR = Path(".lotse")


def up(
    kafka_port: int = typer.Option(9092, help="Loopback port of the embedded Kafka broker"),
    mongo_port: int = typer.Option(27017, help="Loopback port of the embedded MongoDB server"),
    state_dir: Path = typer.Option(
        DEFAULT_STATE_DIR, help="Folder for the database files (data/) and server logs (logs/)"
    ),
) -> None:
    """Start the broker and the database, create the catalogue's topics, run until Ctrl-C."""
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        with running_stack(
            data_dir=state_dir / "data",
            kafka_port=kafka_port,
            mongo_port=mongo_port,
            log_dir=state_dir / "logs",
        ) as stack:
            created = asyncio.run(ensure_topics(stack.kafka_bootstrap, topics_for_tenants([])))
            typer.echo("Lotse is up.\n" + stack.describe())
            typer.echo(f"topics:   {len(created)} created from the contract catalogue")
            typer.echo("Press Ctrl-C to stop.")
            stopping.wait()
            typer.echo("Stopping ...")
    except StackError as error:
        typer.echo(f"lotse up: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo("Stopped; nothing is left running.")
