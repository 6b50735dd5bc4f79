"""``lotse privacy retention``: what each service's retention job has due now, without deleting.

It reads the services' databases, not their HTTP APIs: the job of each service records its rules
with the periods in force (``retention_rules``), and the command counts with the same queries the
job deletes by (``lotse_runtime.retention.due_from_records``). So it needs no running service and
no token, only a MongoDB login that may read the three databases, and what it shows is what the
next run would do.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import typer
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from lotse_cli.privacy_commands import privacy_app
from lotse_runtime.retention import RULES_COLLECTION, DueRecords, due_from_records

DEFAULT_MONGO_URL = "mongodb://127.0.0.1:27017/?directConnection=true"


async def _collect(mongo_url: str, databases: dict[str, str], now: datetime) -> dict[str, list[DueRecords] | None]:
    """Per service, what is due (None: its job has recorded no rules in that database yet)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True, serverSelectionTimeoutMS=5000)
    try:
        found: dict[str, list[DueRecords] | None] = {}
        for service, name in databases.items():
            database = client[name]
            if await database[RULES_COLLECTION].count_documents({}, limit=1) == 0:
                found[service] = None
                continue
            found[service] = await due_from_records(database, now)
        return found
    finally:
        await client.close()


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d") if moment else "-"


@privacy_app.command("retention")
def retention(
    mongo_url: str = typer.Option(DEFAULT_MONGO_URL, "--mongo-url", envvar="LOTSE_MONGO_URL", help="MongoDB URL"),
    registry_db: str = typer.Option("registry", help="The registry's database"),
    matching_db: str = typer.Option("matching", help="The matching service's database"),
    notifications_db: str = typer.Option("notifications", help="The notifications service's database"),
    tenant: str | None = typer.Option(None, help="Only this tenant"),
    at: datetime | None = typer.Option(None, "--at", help="Count what is due at this time (UTC), not now"),
    as_json: bool = typer.Option(False, "--json", help="One JSON document instead of a table"),
) -> None:
    """Per service and tenant, how many records each retention rule has due and the oldest; deletes nothing."""
    now = (at.replace(tzinfo=UTC) if at.tzinfo is None else at) if at else datetime.now(UTC)
    databases = {"registry": registry_db, "matching": matching_db, "notifications": notifications_db}
    try:
        found = asyncio.run(_collect(mongo_url, databases, now))
    except PyMongoError as error:
        typer.echo(f"privacy retention: MongoDB not usable: {error}", err=True)
        raise typer.Exit(1) from None
    rows = [due for dues in found.values() for due in dues or [] if due.count and tenant in (None, due.tenant)]
    if as_json:
        document = {
            "at": now.isoformat(),
            "services_without_rules": [service for service, dues in found.items() if dues is None],
            "due": [
                {
                    "service": due.service,
                    "tenant": due.tenant,
                    "rule": due.rule,
                    "count": due.count,
                    "oldest": due.oldest.isoformat() if due.oldest else None,
                    "period_days": due.period_days,
                    "what": due.description,
                }
                for due in rows
            ],
        }
        typer.echo(json.dumps(document, indent=2))
        return
    typer.echo(f"due at {now.isoformat(timespec='seconds')} (nothing is deleted by this command)")
    typer.echo(f"{'service':<14} {'tenant':<24} {'rule':<38} {'due':>7}  {'oldest':<10}  period")
    if not rows:
        typer.echo("nothing is due")
    for due in rows:
        typer.echo(
            f"{due.service:<14} {due.tenant:<24} {due.rule:<38} {due.count:>7}  {_when(due.oldest):<10}  "
            f"{due.period_days} days"
        )
    for service, dues in found.items():
        if dues is None:
            typer.echo(f"{service}: no retention rules recorded in {databases[service]!r} (has the service run yet?)")
