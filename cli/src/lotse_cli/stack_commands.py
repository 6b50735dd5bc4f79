"""``lotse up``: the whole platform on this machine until Ctrl-C, optionally with the demo."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import typer

from lotse_cli.demo import Demo, DemoError, TenantReport
from lotse_cli.demo_data import DEMO_TENANTS
from lotse_cli.supervisor import Platform, Ports, running_platform
from lotse_devstack import StackError
from lotse_runtime.auth import AuthConfig, Role, issue_token

DEFAULT_STATE_DIR = Path(".lotse")


def up(
    demo: bool = typer.Option(False, "--demo", help="Onboard two demo municipalities and play a short scenario"),
    state_dir: Path = typer.Option(
        DEFAULT_STATE_DIR,
        help=(
            "The installation's folder: database files (data/), logs (logs/) and the development secrets the "
            "services generate and share (secrets/, mode 600)"
        ),
    ),
    kafka_port: int = typer.Option(Ports.kafka, help="Port of the embedded Kafka broker"),
    mongo_port: int = typer.Option(Ports.mongo, help="Port of the embedded MongoDB server"),
    smtp_port: int = typer.Option(Ports.smtp, help="Port of the SMTP sink"),
    mailbox_port: int = typer.Option(Ports.mailbox, help="HTTP port of the SMTP sink's mailbox"),
) -> None:
    """Start the broker, the database, the SMTP sink and the three services; stop all on Ctrl-C."""
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    ports = Ports(kafka=kafka_port, mongo=mongo_port, smtp=smtp_port, mailbox=mailbox_port)
    tenants = [tenant.slug for tenant in DEMO_TENANTS] if demo else []
    try:
        with running_platform(
            ports=ports, state_dir=state_dir, tenants=tenants, echo=typer.echo, log_format="console"
        ) as platform:
            typer.echo(where_to_look(platform, state_dir))
            # The services run in development mode: they accept tokens signed with this installation's key.
            auth = platform.auth_config()
            reports = Demo(platform, auth, lambda line: typer.echo(f"demo          | {line}")).run() if demo else []
            typer.echo(bearer_tokens(auth, reports))
            stopping.wait()
            typer.echo("Stopping ...")
    except (StackError, DemoError) as error:
        typer.echo(f"lotse up: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo("Stopped; nothing is left running.")


def where_to_look(platform: Platform, state_dir: Path) -> str:
    """The addresses, and where the logs are that the terminal leaves out."""
    logs = state_dir / "logs"
    return "\n".join(
        [
            "",
            "Lotse is running. Where to look:",
            *(f"  {name:<14} {platform.url(name)}/docs" for name in platform.ports.services()),
            f"  {'mailbox':<14} {platform.mailbox_url}/messages   (SMTP sink on 127.0.0.1:{platform.ports.smtp})",
            f"  {'kafka':<14} {platform.stack.kafka_bootstrap}",
            f"  {'mongodb':<14} {platform.stack.mongo_url}",
            f"  {'data':<14} {state_dir / 'data'}",
            f"  {'logs':<14} {logs / '<service>.log'}   (this terminal shows only warnings and errors)",
            "",
        ]
    )


def bearer_tokens(auth: AuthConfig, reports: list[TenantReport]) -> str:
    """A ready bearer token per role and tenant."""
    lines = [
        "",
        "Bearer tokens (12 hours; send as 'Authorization: Bearer <token>'):",
        f"  platform-admin: {issue_token(auth, subject='demo-admin', roles=[Role.PLATFORM_ADMIN])}",
    ]
    for report in reports:
        slug = report.tenant.slug
        tokens = {
            "coordinator": issue_token(auth, subject=f"{slug}-office", roles=[Role.COORDINATOR], tenant=slug),
            "partner": issue_token(auth, subject=f"{slug}-portal", roles=[Role.PARTNER], tenant=slug),
        }
        if report.organisation_ids:
            tokens["initiative-admin"] = issue_token(
                auth,
                subject=f"{slug}-initiative",
                roles=[Role.INITIATIVE_ADMIN],
                tenant=slug,
                organisation=report.organisation_ids[-1],
            )
        if report.volunteer_ids:
            tokens["volunteer"] = issue_token(
                auth, subject=report.volunteer_ids[0], roles=[Role.VOLUNTEER], tenant=slug
            )
        lines.append(f"  {report.tenant.name} ({slug}):")
        lines += [f"    {role + ':':<18}{token}" for role, token in tokens.items()]
    lines += ["", "Press Ctrl-C to stop everything."]
    return "\n".join(lines)
