"""``lotse privacy report``: the tenant's record of processing activities (DSGVO Art. 30(1)) and a
data map, generated from the markings of the contracts and the store catalogue.

Nothing here lists personal data by hand: the fields come from the `x-personal-data` markings of
the event models (`lotse_contracts.personal_data`) and from the store catalogue
(`lotse_contracts.data_stores`), the topics and their recipients from the topic catalogue, the
periods from the retention settings (`lotse_runtime.retention`, with the tenant's overrides).
Only the municipality's own facts (its name and contact) come from the registry, when it is
reachable with a token; otherwise the report says what is to be filled in.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from lotse_cli.ops_commands import RegistryOption
from lotse_cli.privacy_commands import privacy_app
from lotse_contracts.data_stores import STORES
from lotse_contracts.event_types import EVENT_TYPES
from lotse_contracts.events.values import TENANT_PATTERN
from lotse_contracts.personal_data import (
    CATEGORY_TITLES,
    PURPOSE_TITLES,
    RETENTION_RULE_TEXT,
    DataCategory,
    DataSubject,
    Purpose,
    RetentionRule,
    walk_markings,
)
from lotse_contracts.topics import ALL_TOPICS, DEAD_LETTER_RETENTION, NEEDS, PROPOSALS, Topic
from lotse_runtime import audit
from lotse_runtime.retention import RULES_COLLECTION, Period, RetentionPeriods, RetentionSettings

PLACEHOLDER = "[to be filled in by the municipality]"
WEBHOOK_PARTNERS = "the tenant's partner systems by webhook, as far as notifications forwards it"
# Notifications forwards need and matching events to the tenant's webhooks (its README); nothing
# else leaves the platform.
WEBHOOK_TOPICS: tuple[Topic, ...] = (NEEDS, PROPOSALS)
TECHNICAL_MEASURES: tuple[str, ...] = (
    "Every event model refuses unknown fields; a need has no field for a refugee's name or document number.",
    "Topics with personal data age out (retention per topic in the data map); services keep read models.",
    "Each service owns its database; services talk only over the topics of the catalogue.",
    "Kafka over SASL_SSL with one SCRAM credential per service and per partner system; partners write only "
    "their own tenant's inbound topic.",
    "Sign-in at the municipality's OpenID provider; every API verifies tokens against its key set and checks "
    "tenant and role on each request.",
    "The portal keeps sign-in tokens sealed with a key derived from the session id.",
    "A volunteer's erasure is an event every service applies; retention jobs remove what is due (periods below).",
)


class Controller(BaseModel):
    """Art. 30(1)(a): the municipality responsible, as far as the registry knows it."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    name: str
    municipality_key: str
    contact_email: str
    contact_phone: str
    data_protection_officer: str
    from_registry: bool


class RetentionPeriod(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: RetentionRule
    days: int | None
    what: str


class ProcessingActivity(BaseModel):
    """One purpose with whom and what it concerns and who receives it (Art. 30(1)(b)-(d))."""

    model_config = ConfigDict(frozen=True)

    purpose: Purpose
    description: str
    data_subjects: list[DataSubject]
    data_categories: list[DataCategory]
    recipients: list[str]


class DataMapEntry(BaseModel):
    """One personal field in one place: a topic or a service's collection."""

    model_config = ConfigDict(frozen=True)

    kind: str  # "topic" or "database"
    location: str  # topic name, or `<database>.<collection>`
    service: str  # the producing service of a topic, the owner of a database
    field: str
    event_types: list[str]
    data_subjects: list[DataSubject]
    category: DataCategory
    purposes: list[Purpose]
    kept: str
    retention: RetentionRule
    recipients: list[str]
    note: str | None = None


class PrivacyReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    generated_at: datetime
    controller: Controller
    activities: list[ProcessingActivity]
    transfers_to_third_countries: str
    retention_source: str
    retention: list[RetentionPeriod]
    technical_measures: list[str]
    data_map: list[DataMapEntry]


def controller_of(tenant: str, settings: dict[str, object] | None) -> Controller:
    """The controller from the registry's tenant view, or placeholders where it is unknown."""
    known = settings or {}

    def fact(name: str) -> str:
        value = known.get(name)
        return str(value) if value else PLACEHOLDER

    return Controller(
        tenant=tenant,
        name=fact("name"),
        municipality_key=fact("municipality_key"),
        contact_email=fact("coordination_email"),
        contact_phone=fact("coordination_phone"),
        data_protection_officer=PLACEHOLDER,
        from_registry=settings is not None,
    )


def _period_days(rule: RetentionRule, periods: RetentionPeriods) -> int | None:
    if rule is RetentionRule.AUDIT_TRAIL:
        return audit.DEFAULT_RETENTION.days
    try:
        return periods.period(Period(f"{rule.value}_days")).days
    except ValueError:  # not a retention job's rule: no fixed period
        return None


def _kept(rule: RetentionRule, periods: RetentionPeriods) -> str:
    days = _period_days(rule, periods)
    text = RETENTION_RULE_TEXT[rule]
    return f"{rule.value}: {days} days ({text})" if days is not None else f"{rule.value}: {text}"


def _topic_kept(topic: Topic) -> str:
    """How long the topic keeps a record; the services' copies follow the field's retention rule."""
    kept = "compacted: the latest record per key" if topic.retention is None else f"{topic.retention.days} days"
    if topic.consumers:
        kept += f"; dead letters {DEAD_LETTER_RETENTION.days} days"
    return kept


def _recipients(topic: Topic) -> list[str]:
    recipients = [str(service) for service in topic.consumers]
    if topic in WEBHOOK_TOPICS:
        recipients.append(WEBHOOK_PARTNERS)
    return recipients


def data_map(tenant: str | None, periods: RetentionPeriods) -> list[DataMapEntry]:
    """Every personal field on a topic and in a database, with its period and recipients (a tenant's
    own topics named by the tenant, or as `<tenant>` for the platform as a whole)."""
    by_place: dict[tuple[str, str], list[str]] = defaultdict(list)
    first: dict[tuple[str, str], DataMapEntry] = {}
    for topic in ALL_TOPICS:
        name = topic.name
        if topic.is_template:
            name = topic.for_tenant(tenant).name if tenant else topic.name.replace("{tenant}", "<tenant>")
        for event_type in topic.event_types:
            for marked in walk_markings(EVENT_TYPES[event_type]):
                if not marked.marking:
                    continue
                place = (name, marked.path)
                by_place[place].append(event_type)
                first.setdefault(
                    place,
                    DataMapEntry(
                        kind="topic",
                        location=name,
                        service=", ".join(str(service) for service in topic.producers),
                        field=marked.path,
                        event_types=[],
                        data_subjects=list(marked.marking.subjects),
                        category=marked.marking.category,
                        purposes=list(marked.marking.purposes),
                        kept=_topic_kept(topic),
                        retention=marked.marking.retention,
                        recipients=_recipients(topic),
                        note=marked.marking.note,
                    ),
                )
    entries = [entry.model_copy(update={"event_types": by_place[place]}) for place, entry in first.items()]
    for collection in STORES:
        if collection.retention is None:
            continue
        for stored in collection.personal:
            entries.append(
                DataMapEntry(
                    kind="database",
                    location=f"{collection.owner.value}.{collection.name}",
                    service=collection.owner.value,
                    field=stored.path,
                    event_types=[],
                    data_subjects=list(stored.subjects),
                    category=stored.category,
                    purposes=list(stored.purposes),
                    kept=f"{_kept(collection.retention, periods)}; removal: {collection.removal}",
                    retention=collection.retention,
                    recipients=[collection.owner.value],
                    note=stored.note,
                )
            )
    return entries


def activities(entries: list[DataMapEntry]) -> list[ProcessingActivity]:
    """One activity per purpose, gathered from the data map."""
    found: list[ProcessingActivity] = []
    for purpose in Purpose:
        concerned = [entry for entry in entries if purpose in entry.purposes]
        if not concerned:
            continue
        found.append(
            ProcessingActivity(
                purpose=purpose,
                description=PURPOSE_TITLES[purpose],
                data_subjects=sorted({s for entry in concerned for s in entry.data_subjects}),
                data_categories=sorted({entry.category for entry in concerned}),
                recipients=sorted({r for entry in concerned for r in entry.recipients}),
            )
        )
    return found


SETTINGS_SOURCE = "the retention settings of this environment (LOTSE_RETENTION, LOTSE_RETENTION_TENANTS)"
JOBS_SOURCE = "the periods the services' retention jobs last recorded (retention_rules)"


def build_report(
    tenant: str,
    settings: dict[str, object] | None,
    periods: RetentionPeriods,
    now: datetime,
    retention_source: str = SETTINGS_SOURCE,
) -> PrivacyReport:
    entries = data_map(tenant, periods)
    return PrivacyReport(
        generated_at=now,
        controller=controller_of(tenant, settings),
        activities=activities(entries),
        transfers_to_third_countries="none: Lotse runs in the municipality's or its provider's data centre",
        retention_source=retention_source,
        retention=[
            RetentionPeriod(rule=rule, days=_period_days(rule, periods), what=RETENTION_RULE_TEXT[rule])
            for rule in RetentionRule
        ],
        technical_measures=list(TECHNICAL_MEASURES),
        data_map=entries,
    )


def _cell(value: object) -> str:
    text = ", ".join(str(item) for item in value) if isinstance(value, list) else str(value)
    return text.replace("|", "\\|")


def to_markdown(report: PrivacyReport) -> str:
    """The record as a Markdown document: Art. 30(1)(a) to (g), then the data map."""
    controller = report.controller
    lines = [
        f"# Record of processing activities: {controller.name} ({controller.tenant})",
        "",
        f"Generated by `lotse privacy report` on {report.generated_at:%Y-%m-%d %H:%M} UTC from the markings "
        "of the contracts and the store catalogue. Art. 30(1) DSGVO.",
        "",
        "## (a) Controller",
        "",
        f"- Controller: {controller.name} (municipality key {controller.municipality_key})",
        f"- Contact: {controller.contact_email}, {controller.contact_phone}",
        f"- Data protection officer: {controller.data_protection_officer}",
        "- Processor: the operator of the Lotse platform " + PLACEHOLDER,
    ]
    if not controller.from_registry:
        lines.append("- The registry was not reached (give --token): the municipality's facts are placeholders.")
    lines += ["", "## (b)-(d) Purposes, data subjects, categories of data, recipients", ""]
    for activity in report.activities:
        lines += [
            f"### {activity.purpose.value}",
            "",
            f"- Purpose: {activity.description}",
            f"- Data subjects: {_cell([s.value for s in activity.data_subjects])}",
            f"- Categories of data: {_cell([CATEGORY_TITLES[c] for c in activity.data_categories])}",
            f"- Recipients: {_cell(activity.recipients)}",
            "",
        ]
    lines += ["## (e) Transfers to third countries", "", report.transfers_to_third_countries, ""]
    lines += ["## (f) Retention", "", f"Periods from {report.retention_source}.", ""]
    lines += ["| rule | period | what happens |", "|---|---|---|"]
    for period in report.retention:
        days = f"{period.days} days" if period.days is not None else "-"
        lines.append(f"| {period.rule.value} | {days} | {_cell(period.what)} |")
    lines += ["", "## (g) Technical and organisational measures (Art. 32)", ""]
    lines += [f"- {measure}" for measure in report.technical_measures]
    lines += [
        "",
        "## Data map",
        "",
        "| where | location | field | subjects | category | purposes | kept | recipients | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in report.data_map:
        lines.append(
            f"| {entry.kind} | {entry.location} | {_cell(entry.field)} "
            f"| {_cell([s.value for s in entry.data_subjects])} "
            f"| {entry.category.value} | {_cell([p.value for p in entry.purposes])} | {_cell(entry.kept)} "
            f"| {_cell(entry.recipients)} | {_cell(entry.note or '')} |"
        )
    return "\n".join(lines) + "\n"


# What a retention job's period is counted from, for the summary.
_COUNTED_FROM: dict[RetentionRule, str] = {
    RetentionRule.WITHDRAWN_VOLUNTEERS: "withdrawal; at once on erasure",
    RetentionRule.CLOSED_NEEDS: "the need ended",
    RetentionRule.PROPOSALS_OF_CLOSED_NEEDS: "the need ended",
    RetentionRule.DELIVERY_LOG: "the delivery",
    RetentionRule.INBOX: "processing",
    RetentionRule.AUDIT_TRAIL: "the entry was written",
}
README_START = "<!-- lotse privacy summary: start -->"
README_END = "<!-- lotse privacy summary: end -->"


def summary_markdown(periods: RetentionPeriods) -> str:
    """What is stored where and for how long, one row per place (the README's data-protection table)."""
    rows: dict[str, tuple[set[str], set[str]]] = {}
    for entry in data_map(None, periods):
        location = entry.location
        if entry.kind == "topic":
            kept = entry.kept
        else:
            days = _period_days(entry.retention, periods)
            kept = entry.retention.value
            if days is not None:
                kept += f" ({days} days after {_COUNTED_FROM.get(entry.retention, 'the last change')})"
        categories, periods_text = rows.setdefault(f"{entry.kind} | `{location}`", (set(), set()))
        categories.add(entry.category.value)
        periods_text.add(kept)
    lines = [
        README_START,
        "| where | place | personal data | kept |",
        "|---|---|---|---|",
        *(f"| {place} | {', '.join(sorted(c))} | {'; '.join(sorted(k))} |" for place, (c, k) in rows.items()),
        README_END,
    ]
    return "\n".join(lines) + "\n"


def periods_from_records(records: list[dict[str, Any]], tenant: str, fallback: RetentionPeriods) -> RetentionPeriods:
    """The periods the retention jobs recorded for a tenant (its own, else the default), over the
    fallback; where services disagree, the longest (what is kept longest is what the record must say)."""
    found: dict[str, int] = {}
    for record in records:
        period = Period(record["period"])
        days = int(record.get("tenant_days", {}).get(tenant, record["default_days"]))
        found[period.value] = max(days, found.get(period.value, 0))
    return fallback.model_copy(update=found)


async def _recorded_rules(mongo_url: str, databases: list[str]) -> list[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    try:
        return [record for name in databases async for record in client[name][RULES_COLLECTION].find({})]
    finally:
        await client.close()


def _tenant_settings(registry: str, tenant: str, token: str | None) -> dict[str, object] | None:
    """The registry's view of the tenant, or None (no token, unreachable, refused)."""
    if not token:
        return None
    request = urllib.request.Request(f"{registry}/tenants/{tenant}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            found = json.loads(response.read())
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as error:
        typer.echo(f"privacy report: tenant settings not read from {registry}: {error}", err=True)
        return None
    return found if isinstance(found, dict) else None


@privacy_app.command("report")
def report(
    tenant: Annotated[str, typer.Option("--tenant", help="Slug of the municipality")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder to write the Markdown and JSON to (default: Markdown on stdout)"),
    ] = None,
    registry: str = RegistryOption,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="LOTSE_ADMIN_TOKEN", help="A token that may read the tenant's settings"),
    ] = None,
    mongo_url: Annotated[
        str | None,
        typer.Option(
            "--mongo-url",
            envvar="LOTSE_MONGO_URL",
            help="Read the periods in force from the services' databases (else from this environment's settings)",
        ),
    ] = None,
    databases: Annotated[
        list[str] | None,
        typer.Option("--database", help="A service database to read the periods from (default: the three)"),
    ] = None,
) -> None:
    """Write the tenant's record of processing activities (Art. 30 DSGVO) and data map."""
    if not re.fullmatch(TENANT_PATTERN, tenant):
        typer.echo(f"privacy report: not a tenant slug: {tenant!r}", err=True)
        raise typer.Exit(2)
    periods, source = RetentionSettings().retention_periods(tenant), SETTINGS_SOURCE
    if mongo_url:
        try:
            records = asyncio.run(_recorded_rules(mongo_url, databases or ["registry", "matching", "notifications"]))
        except PyMongoError as error:
            typer.echo(f"privacy report: periods not read from the databases: {error}", err=True)
        else:
            if records:
                periods, source = periods_from_records(records, tenant, periods), JOBS_SOURCE
    built = build_report(tenant, _tenant_settings(registry, tenant, token), periods, datetime.now(UTC), source)
    markdown = to_markdown(built)
    if out is None:
        typer.echo(markdown, nl=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    stem = f"record-of-processing-{tenant}"
    (out / f"{stem}.md").write_text(markdown)
    (out / f"{stem}.json").write_text(built.model_dump_json(indent=2) + "\n")
    typer.echo(f"wrote {out / stem}.md and .json ({len(built.data_map)} personal fields mapped)")


@privacy_app.command("summary")
def summary() -> None:
    """Print what is stored where and for how long (the README's table, platform defaults)."""
    typer.echo(summary_markdown(RetentionSettings().retention), nl=False)
