"""The ``lotse`` command: run the platform locally, work with the contracts, operate it."""

from __future__ import annotations

import typer

from lotse_cli.contracts_commands import contracts_app
from lotse_cli.deploy_commands import deploy_app
from lotse_cli.ops_commands import dlq_app, health, topics_app
from lotse_cli.stack_commands import up
from lotse_cli.tenant_commands import partner_app, tenant_app

app = typer.Typer(help="Lotse: coordinate volunteer help for refugees across municipalities.", no_args_is_help=True)
app.add_typer(contracts_app, name="contracts", help="Export and check the event contracts.")
app.add_typer(topics_app, name="topics", help="Create or verify the catalogue's topics.")
app.add_typer(dlq_app, name="dlq", help="Inspect and replay dead letters.")
app.add_typer(deploy_app, name="deploy", help="Generate and check the Kubernetes resources derived from the catalogue.")
app.add_typer(tenant_app, name="tenant", help="Onboard municipalities.")
app.add_typer(partner_app, name="partner", help="Manage partner systems' credentials.")
app.command()(up)
app.command()(health)
