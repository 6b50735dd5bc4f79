"""``lotse up``: the whole platform on this machine until Ctrl-C, optionally with the demo."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx
import typer

from lotse_cli.demo import Demo, DemoError
from lotse_cli.demo_data import DEMO_TENANTS
from lotse_cli.demo_logins import DemoLogins, Login, accounts_path
from lotse_cli.supervisor import Platform, Ports, running_platform
from lotse_devstack import StackError
from lotse_devstack.idp import AccountsFile, IdpError, client_credentials, sign_in

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
    sms_port: int = typer.Option(Ports.sms, help="Port of the SMS sink (the stand-in SMS gateway)"),
    idp_port: int = typer.Option(Ports.idp, help="Port of the local OpenID provider (sign-in)"),
) -> None:
    """Start the broker, the database, the SMTP and SMS sinks, the local OpenID provider and the
    services; stop all on Ctrl-C."""
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    ports = Ports(kafka=kafka_port, mongo=mongo_port, smtp=smtp_port, mailbox=mailbox_port, sms=sms_port, idp=idp_port)
    tenants = [tenant.slug for tenant in DEMO_TENANTS] if demo else []
    # The demo's accounts exist before the provider starts (it reads its partner clients at start).
    logins = DemoLogins(state_dir.resolve())
    if demo:
        logins.ensure()
    try:
        with running_platform(
            ports=ports, state_dir=state_dir, tenants=tenants, echo=typer.echo, log_format="console"
        ) as platform:
            typer.echo(where_to_look(platform, state_dir))
            if demo:
                Demo(platform, logins, lambda line: typer.echo(f"demo          | {line}")).run()
            typer.echo(sign_in_guide(platform, logins.table() if demo else []))
            stopping.wait()
            typer.echo("Stopping ...")
    except (StackError, DemoError, IdpError) as error:
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
            f"  {'portal':<14} http://127.0.0.1:{platform.ports.portal}   (start here; demo logins below)",
            *(f"  {name:<14} {platform.url(name)}/docs" for name in platform.ports.services()),
            f"  {'mailbox':<14} {platform.mailbox_url}/messages   (SMTP sink on 127.0.0.1:{platform.ports.smtp})",
            f"  {'sms':<14} {platform.sms_url}   (SMS sink: what would have gone to phones)",
            *(
                [f"  {'sign-in (idp)':<14} {platform.idp.discovery_url}   (accounts: {accounts_path(platform.home)})"]
                if platform.idp
                else []
            ),
            f"  {'kafka':<14} {platform.stack.kafka_bootstrap}",
            f"  {'mongodb':<14} {platform.stack.mongo_url}",
            f"  {'data':<14} {state_dir / 'data'}",
            f"  {'logs':<14} {logs / '<service>.log'}   (this terminal shows only warnings and errors)",
            "",
        ]
    )


def sign_in_guide(platform: Platform, logins: list[Login]) -> str:
    """The portal first, then who can sign in there (and at the APIs, with `lotse token`)."""
    lines = ["", f"Open the portal: http://127.0.0.1:{platform.ports.portal}", ""]
    if logins:
        width = max(len(login.username) for login in logins)
        lines += [
            f"Demo logins (kept in {accounts_path(platform.home)}):",
            f"  {'tenant':<13} {'role':<30} {'user name':<{width}}  password",
        ]
        lines += [
            f"  {login.tenant or '-':<13} {login.role:<30} {login.username:<{width}}  {login.password}"
            for login in logins
        ]
        lines.append("")
    lines += [
        "A bearer token for the APIs: lotse token --user <user name>   (partner systems: --client-credentials)",
        "",
        "Press Ctrl-C to stop everything.",
    ]
    return "\n".join(lines)


def token(
    user: str | None = typer.Option(None, "--user", help="Sign in as this user of the local OpenID provider"),
    password: str | None = typer.Option(
        None, "--password", envvar="LOTSE_PASSWORD", help="The user's password (default: from the accounts file)"
    ),
    client_id: str | None = typer.Option(
        None, "--client-credentials", help="A partner system's client id: its token by the client credentials flow"
    ),
    state_dir: Path = typer.Option(DEFAULT_STATE_DIR, help="The installation's folder (its idp/accounts.json)"),
    idp_url: str = typer.Option(f"http://127.0.0.1:{Ports.idp}", help="The local OpenID provider"),
) -> None:
    """Print an access token of the local OpenID provider, obtained by signing in as a person does
    (authorization code flow with PKCE through its login page) or as a partner system does."""
    if (user is None) == (client_id is None):
        typer.echo("lotse token: give exactly one of --user or --client-credentials", err=True)
        raise typer.Exit(2)
    directory = AccountsFile(accounts_path(state_dir.resolve())).read()
    try:
        if client_id is not None:
            client = next((c for c in directory.clients if c.client_id == client_id), None)
            if client is None:
                typer.echo(f"lotse token: no partner client {client_id!r} in {accounts_path(state_dir)}", err=True)
                raise typer.Exit(1)
            typer.echo(client_credentials(idp_url, client.client_id, client.client_secret).access_token)
            return
        assert user is not None
        if password is None:
            known = next((a for a in directory.accounts if a.username.lower() == user.lower()), None)
            password = known.password if known is not None and known.password else None
        if password is None:
            password = typer.prompt(f"Password of {user}", hide_input=True)
        typer.echo(sign_in(idp_url, user, password).access_token)
    except IdpError as error:
        typer.echo(f"lotse token: {error}", err=True)
        raise typer.Exit(1) from None
    except httpx.HTTPError as error:
        typer.echo(
            f"lotse token: the OpenID provider at {idp_url} does not answer ({error}); is `lotse up` running?", err=True
        )
        raise typer.Exit(1) from None
