"""The ``lotse`` command: run the platform locally, work with the contracts, operate it."""

from __future__ import annotations

from importlib.metadata import version

import typer

from lotse_cli import (
    privacy_report,  # noqa: F401 - registers `lotse privacy report`
    privacy_retention,  # noqa: F401 - registers `lotse privacy retention`
)
from lotse_cli.contracts_commands import contracts_app
from lotse_cli.deploy_commands import deploy_app
from lotse_cli.ops_commands import dlq_app, health, topics_app
from lotse_cli.privacy_commands import privacy_app
from lotse_cli.tenant_commands import partner_app, tenant_app

DEVSTACK_MISSING = (
    "lotse up: the local stack is not installed; install the CLI with it: pip install 'lotse-cli[devstack]' "
    "(in the repository: uv sync)"
)

app = typer.Typer(help="Lotse: coordinate volunteer help for refugees across municipalities.", no_args_is_help=True)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"lotse {version('lotse-cli')}")
        raise typer.Exit()


@app.callback()
def main(
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit"
    ),
) -> None:
    """Lotse: coordinate volunteer help for refugees across municipalities."""


def _up_without_devstack() -> None:
    """Start the platform locally (needs the extra 'devstack': pip install 'lotse-cli[devstack]')."""
    typer.echo(DEVSTACK_MISSING, err=True)
    raise typer.Exit(1)


app.add_typer(contracts_app, name="contracts", help="Export and check the event contracts.")
app.add_typer(topics_app, name="topics", help="Create or verify the catalogue's topics.")
app.add_typer(dlq_app, name="dlq", help="Inspect and replay dead letters.")
app.add_typer(deploy_app, name="deploy", help="Generate and check the Kubernetes resources derived from the catalogue.")
app.add_typer(tenant_app, name="tenant", help="Onboard municipalities.")
app.add_typer(partner_app, name="partner", help="Manage partner systems' credentials.")
app.add_typer(privacy_app, name="privacy", help="Data protection: the record of processing and what retention deletes.")
try:
    # `lotse up` needs the embedded broker and database, an optional extra the operations image leaves out.
    from lotse_cli.stack_commands import token, up
except ModuleNotFoundError as missing:
    if not (missing.name or "").startswith("lotse_devstack"):
        raise
    app.command(
        "up", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}, add_help_option=False
    )(_up_without_devstack)
else:
    app.command()(up)
    app.command()(token)
app.command()(health)
