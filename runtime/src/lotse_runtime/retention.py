"""Retention: how long each kind of record is kept, and the job that removes what is older.

Each service that owns data declares its rules (``RetentionRule``: which documents of which
collection, counted from which date, kept for which period, then deleted or anonymised) and runs
one ``RetentionJob`` on a timer. The periods have defaults (``DEFAULT_RETENTION``, the one place
they are written down) which the settings override for all tenants (``LOTSE_RETENTION``) or per
tenant (``LOTSE_RETENTION_TENANTS``); set the same values on every service.

The job is idempotent and safe with several replicas and restarts: it finds its work by query
(what is older than the tenant's period and not yet done), removes it in bounded batches, and
runs only while it holds a lease in the service's database (the outbox relay's lease collection,
under its own name). Each run records the rules with the periods in force (``retention_rules``),
so that ``lotse privacy retention`` counts what is due with the same queries, from the database
alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from lotse_contracts.events.values import TENANT_PATTERN
from lotse_contracts.topics import ALL_TOPICS, DEAD_LETTER_RETENTION, Topic
from lotse_runtime.inbox import INBOX_COLLECTION
from lotse_runtime.metrics import RETENTION_ANONYMISED, RETENTION_DELETED, RETENTION_FAILURES, RETENTION_LAST_RUN
from lotse_runtime.outbox import LEASE_COLLECTION, take_lease

log = structlog.get_logger("lotse.retention")

Document = dict[str, Any]
RULES_COLLECTION = "retention_rules"
# Set on what an anonymising rule has done, so that it is not done again (and not counted as due).
ANONYMISED_AT = "anonymised_at"


# Kafka deletes whole segments, once the newest record of one is past ``retention.ms``; a segment
# is rolled after ``segment.ms``, the broker's default a week (``log.roll.hours`` 168). So a record
# lives up to its topic's retention plus the segment time.
KAFKA_DEFAULT_SEGMENT = timedelta(days=7)


def record_lifetime(topic: Topic) -> timedelta:
    """The longest a record of a deleting topic (``retention`` set) can be read from it."""
    assert topic.retention is not None
    return topic.retention + (topic.segment or KAFKA_DEFAULT_SEGMENT)


def dedup_window() -> timedelta:
    """How long an event can come back to a consumer: the longest a topic keeps a record, plus the
    time it may then wait in a dead-letter topic before it is replayed, each with the segment time
    by which Kafka may keep a record past its retention. An inbox record younger than this still
    suppresses a duplicate; an older one can no longer meet its event again."""
    longest = max(record_lifetime(topic) for topic in ALL_TOPICS if topic.retention is not None)
    return longest + DEAD_LETTER_RETENTION + KAFKA_DEFAULT_SEGMENT


DEDUP_WINDOW_DAYS = dedup_window().days
# The longest period a setting may give (ten years): longer is no retention at all, and far longer
# (a typo such as 1000000) would not even give a date to count from.
MAX_RETENTION_DAYS = 3650


class Period(StrEnum):
    """The retention periods, by their field in ``RetentionPeriods``."""

    WITHDRAWN_VOLUNTEERS = "withdrawn_volunteers_days"
    CLOSED_NEEDS = "closed_needs_days"
    PROPOSALS_OF_CLOSED_NEEDS = "proposals_of_closed_needs_days"
    DELIVERY_LOG = "delivery_log_days"
    INBOX = "inbox_days"


class RetentionPeriods(BaseModel):
    """How many days each kind of record is kept (for one tenant, or the defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    withdrawn_volunteers_days: int = Field(
        183,
        ge=1,
        le=MAX_RETENTION_DAYS,
        description=(
            "A withdrawn volunteer is erased this long after the withdrawal (registry: the volunteer, consents, "
            "certificate checks, partner references; matching and notifications erase their copies on the event)"
        ),
    )
    closed_needs_days: int = Field(
        365,
        ge=1,
        le=MAX_RETENTION_DAYS,
        description=(
            "A closed or cancelled need is anonymised this long after it ended (registry): description, exact "
            "place and household reference go; category, district, dates and counts stay for the statistics"
        ),
    )
    proposals_of_closed_needs_days: int = Field(
        365,
        ge=1,
        le=MAX_RETENTION_DAYS,
        description=(
            "The proposals of a need closed or cancelled this long ago are anonymised (matching): their reasons, "
            "distance and score go; status and counts stay for the statistics"
        ),
    )
    delivery_log_days: int = Field(
        90,
        ge=1,
        le=MAX_RETENTION_DAYS,
        description="Finished deliveries (e-mail, in-app, webhook: sent, skipped, dead, cancelled) are deleted then",
    )
    inbox_days: int = Field(
        DEDUP_WINDOW_DAYS,
        ge=DEDUP_WINDOW_DAYS,
        le=MAX_RETENTION_DAYS,
        description=(
            "Inbox records (processed event ids) are deleted then; never shorter than the dedup window "
            "(the longest topic retention plus the dead-letter retention, each with Kafka's segment time)"
        ),
    )

    def period(self, name: Period) -> timedelta:
        return timedelta(days=int(getattr(self, name.value)))


DEFAULT_RETENTION = RetentionPeriods()
"""The platform's default retention periods: what the record of processing reports."""


class TenantRetention(BaseModel):
    """One tenant's own periods; an absent field keeps the platform's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    withdrawn_volunteers_days: int | None = Field(None, ge=1, le=MAX_RETENTION_DAYS)
    closed_needs_days: int | None = Field(None, ge=1, le=MAX_RETENTION_DAYS)
    proposals_of_closed_needs_days: int | None = Field(None, ge=1, le=MAX_RETENTION_DAYS)
    delivery_log_days: int | None = Field(None, ge=1, le=MAX_RETENTION_DAYS)
    inbox_days: int | None = Field(None, ge=DEDUP_WINDOW_DAYS, le=MAX_RETENTION_DAYS)

    def over(self, defaults: RetentionPeriods) -> RetentionPeriods:
        return defaults.model_copy(update=self.model_dump(exclude_none=True))


class RetentionSettings(BaseSettings):
    """Mixed into the settings of each service that owns data (environment prefix ``LOTSE_``)."""

    model_config = SettingsConfigDict(env_prefix="LOTSE_", extra="ignore")

    run_retention: bool = Field(True, description="Run the retention job in this process (one replica at a time works)")
    retention_interval_seconds: float = Field(3600.0, gt=0, description="How often the retention job looks for work")
    retention_batch_size: int = Field(
        500, ge=1, le=10_000, description="Most records the retention job deletes or anonymises in one write"
    )
    retention: RetentionPeriods = Field(
        DEFAULT_RETENTION,
        description='Retention periods of every tenant, JSON, e.g. {"delivery_log_days": 60}; absent fields default',
    )
    retention_tenants: dict[str, TenantRetention] = Field(
        default_factory=dict,
        description='Per-tenant retention periods, JSON, e.g. {"musterstadt": {"withdrawn_volunteers_days": 90}}',
    )

    @field_validator("retention_tenants")
    @classmethod
    def _tenant_slugs(cls, tenants: dict[str, TenantRetention]) -> dict[str, TenantRetention]:
        # A key that cannot be a tenant is a typo whose periods would silently apply to no one.
        wrong = sorted(tenant for tenant in tenants if not re.fullmatch(TENANT_PATTERN, tenant))
        if wrong:
            raise ValueError(f"not tenant slugs ({TENANT_PATTERN}): {', '.join(map(repr, wrong))}")
        return tenants

    def retention_periods(self, tenant: str) -> RetentionPeriods:
        own = self.retention_tenants.get(tenant)
        return own.over(self.retention) if own is not None else self.retention


class Action(StrEnum):
    DELETE = "delete"
    ANONYMISE = "anonymise"


@dataclass(frozen=True)
class RetentionRule:
    """Which documents of ``collection`` (``match``, per tenant) are due once ``age_field`` is
    older than the tenant's ``period``, and what happens to them.

    ``DELETE`` deletes them; ``ANONYMISE`` removes the ``unset`` fields, sets ``set_fields`` and
    marks them anonymised. A rule with a service's own ``handler`` (``RetentionJob``) lets the
    service do the work (e.g. the registry's erasure), which must make the documents stop matching."""

    name: str  # the metrics label, e.g. "registry_withdrawn_volunteers"
    collection: str
    period: Period
    age_field: str
    action: Action
    description: str
    match: Mapping[str, Any] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    set_fields: Mapping[str, Any] = field(default_factory=dict)
    # Other collections the rule's handler changes with these documents (e.g. a need's proposals).
    also: tuple[str, ...] = ()

    def base_filter(self) -> Document:
        """The documents the rule applies to at all, whatever their age."""
        query: Document = dict(self.match)
        if self.action is Action.ANONYMISE:
            query[ANONYMISED_AT] = {"$exists": False}
        return query

    def due_filter(self, tenant: str, cutoff: datetime) -> Document:
        return {**self.base_filter(), "tenant": tenant, self.age_field: {"$lt": cutoff}}


def inbox_rule(service: str) -> RetentionRule:
    """Every consuming service's inbox: a processed event id is kept for the dedup window only."""
    return RetentionRule(
        name=f"{service}_inbox",
        collection=INBOX_COLLECTION,
        period=Period.INBOX,
        age_field="processed_at",
        action=Action.DELETE,
        description="inbox records (processed event ids) older than the dedup window",
    )


# A coarsened weekly slot: the whole day (the hours of a recurring appointment trace back to it).
WHOLE_DAY = ("00:00:00", "23:59:59")


def coarse_schedule(schedule: Mapping[str, Any]) -> Document:
    """A need's schedule (``lotse_contracts`` ``Schedule``, as JSON) kept to its days: a one-off
    window becomes the whole day(s) it fell on, a weekly recurrence keeps its weekdays and dates
    but not its hours. Still a valid schedule, so that what reads old needs reads these too."""
    if schedule.get("kind") == "one_off":
        start, end = _moment(schedule["start"]), _moment(schedule["end"])
        first_day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        after_last = end.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        return {**schedule, "start": first_day.isoformat(), "end": after_last.isoformat()}
    weekdays = dict.fromkeys(str(slot["weekday"]) for slot in schedule.get("slots") or [])
    return {
        **schedule,
        "slots": [{"weekday": weekday, "start": WHOLE_DAY[0], "end": WHOLE_DAY[1]} for weekday in weekdays],
    }


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def cutoff(now: datetime, periods: RetentionPeriods, period: Period) -> datetime:
    """Records dated before this are due."""
    return cutoff_days(now, periods.period(period).days)


def cutoff_days(now: datetime, days: int) -> datetime:
    """``now`` less ``days``; a period reaching before the calendar (a record written by an older
    version without bounds) counts from its start, where nothing is due."""
    try:
        return now - timedelta(days=days)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def is_due(dated: datetime | None, now: datetime, periods: RetentionPeriods, period: Period) -> bool:
    """Whether a record dated ``dated`` is due at ``now`` (one without a date never is)."""
    return dated is not None and dated < cutoff(now, periods, period)


@dataclass(frozen=True)
class DueRecords:
    """What one rule has due for one tenant."""

    service: str
    rule: str
    tenant: str
    count: int
    oldest: datetime | None
    period_days: int
    description: str


@dataclass(frozen=True)
class RuleOutcome:
    rule: str
    tenant: str
    done: int


class LeaseLost(Exception):
    """Another replica took the retention lease during a run: this run stops altogether."""


# A service's own work on a batch of due documents of one tenant: how many it dealt with.
Handler = Callable[[str, list[Document], datetime], Awaitable[int]]


class RetentionJob:
    """Applies a service's rules: one run at a time across the replicas (the lease), every
    ``settings.retention_interval_seconds`` while started."""

    def __init__(
        self,
        database: AsyncDatabase[Document],
        rules: Sequence[RetentionRule],
        settings: RetentionSettings,
        *,
        service: str,
        handlers: Mapping[str, Handler] | None = None,
        lease_seconds: float = 300.0,
    ) -> None:
        self.database = database
        self.rules = tuple(rules)
        self.settings = settings
        self.service = service
        self.handlers = dict(handlers or {})
        self.lease_seconds = lease_seconds
        self.lease_name = f"retention-{service}"
        self.owner = uuid.uuid4().hex
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.settings.retention_tenants:
            # The job cannot know every tenant: the slugs it has periods for are logged, so a typo shows.
            log.info(
                "retention periods of their own", job=self.service, tenants=sorted(self.settings.retention_tenants)
            )
        self._task = asyncio.create_task(self._run(), name=f"retention-{self.service}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(PyMongoError):
            await self.database[LEASE_COLLECTION].delete_one({"_id": self.lease_name, "owner": self.owner})

    async def ensure_indexes(self) -> None:
        """An index per rule for its query (a tenant's records by age), which the job and
        ``lotse privacy retention`` find and count by; created where the rules are, so none lacks one."""
        for rule in self.rules:
            await self.database[rule.collection].create_index([("tenant", ASCENDING), (rule.age_field, ASCENDING)])

    async def _run(self) -> None:
        try:
            await self.ensure_indexes()
        except PyMongoError as error:  # the queries work without, only slower; the next start tries again
            log.warning("retention indexes not created", job=self.service, error=repr(error))
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the database away: the next run tries again
                RETENTION_FAILURES.labels(self.service).inc()
                log.warning("retention run failed", job=self.service, error=repr(error))
            # The job's own period (an hour by default), not a wait for a condition.
            await asyncio.sleep(self.settings.retention_interval_seconds)

    async def tenants(self, rule: RetentionRule) -> list[str]:
        found = await self.database[rule.collection].distinct("tenant", rule.base_filter())
        return sorted(str(tenant) for tenant in found if tenant)

    async def record_rules(self, now: datetime) -> None:
        """Write down the rules and the periods in force, for ``lotse privacy retention``."""
        for rule in self.rules:
            tenants = {
                tenant: self.settings.retention_periods(tenant).period(rule.period).days
                for tenant in self.settings.retention_tenants
            }
            await self.database[RULES_COLLECTION].replace_one(
                {"_id": rule.name}, rule_record(self.service, rule, self.settings.retention, tenants, now), upsert=True
            )

    async def due(self, now: datetime) -> list[DueRecords]:
        """What each rule has due per tenant at ``now``, without changing anything."""
        found = []
        for rule in self.rules:
            for tenant in await self.tenants(rule):
                periods = self.settings.retention_periods(tenant)
                found.append(
                    await count_due(self.database, self.service, rule, tenant, periods.period(rule.period).days, now)
                )
        return [due for due in found if due.count]

    async def run_once(self, now: datetime | None = None) -> list[RuleOutcome]:
        """Apply every rule to what is due at ``now``; nothing if another replica holds the lease."""
        now = now or datetime.now(UTC)
        if not await self._hold_lease():
            return []
        await self.record_rules(now)
        outcomes: list[RuleOutcome] = []
        try:
            await self._apply_rules(now, outcomes)
        except LeaseLost:
            # The other replica does the rest; two jobs at once would only do it twice.
            log.info("retention lease lost, run stopped", job=self.service, done=len(outcomes))
            return outcomes
        RETENTION_LAST_RUN.labels(self.service).set(now.timestamp())
        return outcomes

    async def _apply_rules(self, now: datetime, outcomes: list[RuleOutcome]) -> None:
        for rule in self.rules:
            try:
                tenants = await self.tenants(rule)
            except PyMongoError as error:
                self._failed(rule, None, error)
                continue
            for tenant in tenants:
                # Each rule and tenant on its own: one that fails (a handler's error, a record it
                # cannot deal with) is logged and counted, and the others still run.
                try:
                    done = await self._apply(
                        rule, tenant, cutoff(now, self.settings.retention_periods(tenant), rule.period), now
                    )
                except (asyncio.CancelledError, LeaseLost):
                    raise
                except Exception as error:  # noqa: BLE001 - isolated, logged and counted
                    self._failed(rule, tenant, error)
                    continue
                if done:
                    outcomes.append(RuleOutcome(rule.name, tenant, done))
                    log.info("retention applied", rule=rule.name, tenant=tenant, records=done, action=rule.action.value)

    def _failed(self, rule: RetentionRule, tenant: str | None, error: BaseException) -> None:
        RETENTION_FAILURES.labels(self.service).inc()
        log.warning("retention step failed", job=self.service, rule=rule.name, tenant=tenant, error=repr(error))

    async def _hold_lease(self) -> bool:
        return await take_lease(self.database, self.lease_name, self.owner, self.lease_seconds)

    async def _apply(self, rule: RetentionRule, tenant: str, before: datetime, now: datetime) -> int:
        collection = self.database[rule.collection]
        due = rule.due_filter(tenant, before)
        handler = self.handlers.get(rule.name)
        done = 0
        while True:
            # Renewed before every batch, so that a long run keeps it (and one that lost it stops).
            if not await self._hold_lease():
                raise LeaseLost(self.lease_name)
            batch = await (
                collection.find(due)
                .sort([(rule.age_field, ASCENDING), ("_id", ASCENDING)])
                .limit(self.settings.retention_batch_size)
            ).to_list()
            if not batch:
                return done
            ids = [document["_id"] for document in batch]
            if handler is not None:
                count = await handler(tenant, batch, now)
            elif rule.action is Action.DELETE:
                # The due filter again: a record that changed meanwhile (a need reopened) stays.
                count = (await collection.delete_many({**due, "_id": {"$in": ids}})).deleted_count
            else:
                update: Document = {"$set": {**rule.set_fields, ANONYMISED_AT: now}}
                if rule.unset:
                    update["$unset"] = dict.fromkeys(rule.unset, "")
                count = (await collection.update_many({**due, "_id": {"$in": ids}}, update)).modified_count
            (RETENTION_DELETED if rule.action is Action.DELETE else RETENTION_ANONYMISED).labels(rule.name).inc(count)
            done += count
            # Nothing of a full batch done (a handler that refused them all): stop rather than spin.
            if count == 0 or len(batch) < self.settings.retention_batch_size:
                return done


def rule_record(
    service: str, rule: RetentionRule, defaults: RetentionPeriods, tenant_days: Mapping[str, int], now: datetime
) -> Document:
    """How a rule is kept in ``retention_rules``: enough to count what is due without the service."""
    return {
        "_id": rule.name,
        "service": service,
        "collection": rule.collection,
        "period": rule.period.value,
        "age_field": rule.age_field,
        "action": rule.action.value,
        "description": rule.description,
        "match": dict(rule.match),
        "default_days": defaults.period(rule.period).days,
        "tenant_days": dict(tenant_days),
        "recorded_at": now,
    }


def rule_from_record(record: Mapping[str, Any]) -> RetentionRule:
    return RetentionRule(
        name=record["_id"],
        collection=record["collection"],
        period=Period(record["period"]),
        age_field=record["age_field"],
        action=Action(record["action"]),
        description=record["description"],
        match=record["match"],
    )


async def count_due(
    database: AsyncDatabase[Document], service: str, rule: RetentionRule, tenant: str, days: int, now: datetime
) -> DueRecords:
    """How many records ``rule`` has due for ``tenant`` at ``now`` with a period of ``days``, and the oldest date."""
    query = rule.due_filter(tenant, cutoff_days(now, days))
    collection = database[rule.collection]
    count = await collection.count_documents(query)
    oldest = await collection.find_one(query, sort=[(rule.age_field, ASCENDING)]) if count else None
    dated = _at(oldest, rule.age_field) if oldest else None
    return DueRecords(service, rule.name, tenant, count, dated, days, rule.description)


async def due_from_records(database: AsyncDatabase[Document], now: datetime) -> list[DueRecords]:
    """What is due in a service's database at ``now``, by the rules its job recorded there."""
    found = []
    async for record in database[RULES_COLLECTION].find({}).sort("_id", ASCENDING):
        rule = rule_from_record(record)
        tenants = await database[rule.collection].distinct("tenant", rule.base_filter())
        for tenant in sorted(str(tenant) for tenant in tenants if tenant):
            days = int(record["tenant_days"].get(tenant, record["default_days"]))
            found.append(await count_due(database, record["service"], rule, tenant, days, now))
    return found


def _at(document: Mapping[str, Any], dotted: str) -> datetime | None:
    value: Any = document
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
