"""``lotse privacy retention`` on a real database with due records: it counts per service, tenant
and rule what the job would remove (with the tenant's own period), names the oldest, and deletes
nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from typer.testing import CliRunner

from lotse_cli.main import app
from lotse_cli.privacy_report import JOBS_SOURCE
from lotse_devstack import Stack
from lotse_notifications.retention import retention_job
from lotse_notifications.settings import NotificationSettings
from lotse_notifications.store import Store

NOW = datetime(2027, 6, 30, 12, 0, tzinfo=UTC)
TOWN, PATIENT_TOWN = "due-town", "patient-town"


def _delivery(tenant: str, days_old: int) -> dict[str, Any]:
    return {
        "_id": str(uuid.uuid4()),
        "key": uuid.uuid4().hex,
        "tenant": tenant,
        "status": "sent",
        "created_at": NOW - timedelta(days=days_old),
        "finished_at": NOW - timedelta(days=days_old),
    }


async def test_the_command_shows_what_is_due_without_deleting(
    stack: Stack, database: AsyncDatabase[dict[str, Any]]
) -> None:
    settings = NotificationSettings(retention_tenants={PATIENT_TOWN: {"delivery_log_days": 120}})
    # The job records its rules and periods; its run is what the command must not anticipate.
    await retention_job(Store(database), settings).record_rules(NOW)
    deliveries = [_delivery(TOWN, 100), _delivery(TOWN, 95), _delivery(TOWN, 10), _delivery(PATIENT_TOWN, 100)]
    await database.deliveries.insert_many(deliveries)
    arguments = ["privacy", "retention", "--mongo-url", stack.mongo_url, "--notifications-db", database.name]
    arguments += ["--registry-db", f"{database.name}_none", "--matching-db", f"{database.name}_none"]
    arguments += ["--at", NOW.strftime("%Y-%m-%dT%H:%M:%S")]

    table = await asyncio.to_thread(CliRunner().invoke, app, arguments)
    as_json = await asyncio.to_thread(CliRunner().invoke, app, [*arguments, "--json"])

    assert table.exit_code == 0, table.output
    lines = [line.split() for line in table.output.splitlines()]
    assert ["notifications", TOWN, "notifications_delivery_log", "2", "2027-03-22", "90", "days"] in lines
    assert not [line for line in lines if PATIENT_TOWN in line]  # its 120 days are not over
    assert "registry: no retention rules recorded" in table.output
    document = json.loads(as_json.output)
    assert document["due"] == [
        {
            "service": "notifications",
            "tenant": TOWN,
            "rule": "notifications_delivery_log",
            "count": 2,
            "oldest": (NOW - timedelta(days=100)).isoformat(),
            "period_days": 90,
            "what": "finished deliveries (e-mail, SMS, in-app, webhook) with their payloads",
        }
    ]
    assert document["services_without_rules"] == ["registry", "matching"]
    assert await database.deliveries.count_documents({}) == len(deliveries)


async def test_the_privacy_report_states_the_periods_the_jobs_recorded(
    stack: Stack, database: AsyncDatabase[dict[str, Any]], tmp_path: Path
) -> None:
    settings = NotificationSettings(retention_tenants={PATIENT_TOWN: {"delivery_log_days": 120}})
    await retention_job(Store(database), settings).record_rules(NOW)
    arguments = [
        "privacy",
        "report",
        "--tenant",
        PATIENT_TOWN,
        "--out",
        str(tmp_path),
        "--registry",
        "http://127.0.0.1:9",
    ]
    arguments += ["--mongo-url", stack.mongo_url, "--database", database.name]

    result = await asyncio.to_thread(CliRunner().invoke, app, arguments)

    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / f"record-of-processing-{PATIENT_TOWN}.json").read_text())
    assert {period["rule"]: period["days"] for period in report["retention"]}["delivery_log"] == 120
    assert report["retention_source"] == JOBS_SOURCE


async def test_a_period_recorded_beyond_the_calendar_counts_nothing_and_breaks_nothing(
    stack: Stack, database: AsyncDatabase[dict[str, Any]]
) -> None:
    await retention_job(Store(database), NotificationSettings()).record_rules(NOW)
    # As an older version without bounds could have recorded it.
    await database.retention_rules.update_many({}, {"$set": {"tenant_days": {TOWN: 1_000_000}}})
    await database.deliveries.insert_many([_delivery(TOWN, 100), _delivery(PATIENT_TOWN, 100)])
    arguments = ["privacy", "retention", "--mongo-url", stack.mongo_url, "--notifications-db", database.name]
    arguments += ["--registry-db", f"{database.name}_none", "--matching-db", f"{database.name}_none", "--json"]
    arguments += ["--at", NOW.strftime("%Y-%m-%dT%H:%M:%S")]

    result = await asyncio.to_thread(CliRunner().invoke, app, arguments)

    assert result.exit_code == 0, result.output
    assert [(due["tenant"], due["rule"]) for due in json.loads(result.output)["due"]] == [
        (PATIENT_TOWN, "notifications_delivery_log")
    ]
