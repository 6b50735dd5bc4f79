"""The retention periods and what is due at a given now: pure rules, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from lotse_contracts.events.values import Schedule
from lotse_contracts.topics import ALL_TOPICS, DEAD_LETTER_RETENTION
from lotse_runtime.retention import (
    ANONYMISED_AT,
    DEDUP_WINDOW_DAYS,
    DEFAULT_RETENTION,
    MAX_RETENTION_DAYS,
    Action,
    Period,
    RetentionPeriods,
    RetentionRule,
    RetentionSettings,
    TenantRetention,
    coarse_schedule,
    cutoff,
    cutoff_days,
    inbox_rule,
    is_due,
    rule_from_record,
    rule_record,
)

NOW = datetime(2027, 6, 30, 12, 0, tzinfo=UTC)


def test_the_defaults_are_the_documented_periods() -> None:
    assert DEFAULT_RETENTION.period(Period.WITHDRAWN_VOLUNTEERS) == timedelta(days=183)
    assert DEFAULT_RETENTION.period(Period.CLOSED_NEEDS) == timedelta(days=365)
    assert DEFAULT_RETENTION.period(Period.PROPOSALS_OF_CLOSED_NEEDS) == timedelta(days=365)
    assert DEFAULT_RETENTION.period(Period.DELIVERY_LOG) == timedelta(days=90)
    assert DEFAULT_RETENTION.period(Period.INBOX) == timedelta(days=DEDUP_WINDOW_DAYS)
    # Every period has its field (the record of processing reads them by name).
    assert {period.value for period in Period} == set(RetentionPeriods.model_fields)


def test_the_inbox_outlives_every_topic_a_duplicate_can_come_from() -> None:
    # Kafka deletes a segment once its newest record is past retention: a record may outlive its
    # topic's retention by the segment time (a week by default), in its topic and in the dead letters.
    week = timedelta(days=7)
    longest = max(topic.retention + (topic.segment or week) for topic in ALL_TOPICS if topic.retention is not None)
    assert timedelta(days=DEDUP_WINDOW_DAYS) >= longest + DEAD_LETTER_RETENTION + week
    with pytest.raises(ValidationError, match="inbox_days"):
        TenantRetention(inbox_days=DEDUP_WINDOW_DAYS - 1)
    with pytest.raises(ValidationError, match="inbox_days"):
        RetentionPeriods(inbox_days=1)


def test_a_record_is_due_only_once_its_period_has_passed() -> None:
    withdrawn = NOW - timedelta(days=183)
    assert not is_due(withdrawn, NOW, DEFAULT_RETENTION, Period.WITHDRAWN_VOLUNTEERS)
    assert is_due(withdrawn - timedelta(seconds=1), NOW, DEFAULT_RETENTION, Period.WITHDRAWN_VOLUNTEERS)
    assert not is_due(None, NOW, DEFAULT_RETENTION, Period.WITHDRAWN_VOLUNTEERS)
    assert cutoff(NOW, DEFAULT_RETENTION, Period.DELIVERY_LOG) == NOW - timedelta(days=90)


def test_a_tenant_overrides_some_periods_and_keeps_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTSE_RETENTION", '{"delivery_log_days": 60}')
    monkeypatch.setenv("LOTSE_RETENTION_TENANTS", '{"musterstadt": {"withdrawn_volunteers_days": 30}}')
    settings = RetentionSettings()
    own = settings.retention_periods("musterstadt")
    assert own.withdrawn_volunteers_days == 30
    assert own.delivery_log_days == 60  # the platform's setting, not the default
    assert own.closed_needs_days == 365
    other = settings.retention_periods("beispielstadt")
    assert other.withdrawn_volunteers_days == 183
    assert other.delivery_log_days == 60
    assert is_due(NOW - timedelta(days=31), NOW, own, Period.WITHDRAWN_VOLUNTEERS)
    assert not is_due(NOW - timedelta(days=31), NOW, other, Period.WITHDRAWN_VOLUNTEERS)


def test_an_unknown_period_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTSE_RETENTION_TENANTS", '{"musterstadt": {"volunteers_days": 30}}')
    with pytest.raises(ValidationError, match="volunteers_days"):
        RetentionSettings()


def test_the_due_filter_is_per_tenant_and_skips_what_is_anonymised() -> None:
    rule = RetentionRule(
        name="registry_closed_needs",
        collection="needs",
        period=Period.CLOSED_NEEDS,
        age_field="updated_at",
        action=Action.ANONYMISE,
        description="closed needs",
        match={"status": {"$in": ["closed", "cancelled"]}},
        unset=("description",),
    )
    before = NOW - timedelta(days=365)
    assert rule.due_filter("musterstadt", before) == {
        "status": {"$in": ["closed", "cancelled"]},
        ANONYMISED_AT: {"$exists": False},
        "tenant": "musterstadt",
        "updated_at": {"$lt": before},
    }
    deleting = inbox_rule("matching")
    assert deleting.due_filter("musterstadt", before) == {"tenant": "musterstadt", "processed_at": {"$lt": before}}


def test_a_recorded_rule_reads_back_as_the_same_query() -> None:
    rule = inbox_rule("registry")
    record = rule_record("registry", rule, DEFAULT_RETENTION, {"musterstadt": 60}, NOW)
    assert record["default_days"] == DEDUP_WINDOW_DAYS
    assert record["tenant_days"] == {"musterstadt": 60}
    again = rule_from_record(record)
    assert again.due_filter("musterstadt", NOW) == rule.due_filter("musterstadt", NOW)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("LOTSE_RETENTION", '{"delivery_log_days": 1000000}', "delivery_log_days"),
        ("LOTSE_RETENTION_TENANTS", '{"musterstadt": {"closed_needs_days": 1000000}}', "closed_needs_days"),
        ("LOTSE_RETENTION_TENANTS", '{"musterstadt": {"inbox_days": 4000}}', "inbox_days"),
        ("LOTSE_RETENTION_TENANTS", '{"Muster Stadt": {"closed_needs_days": 30}}', "Muster Stadt"),
    ],
)
def test_a_period_beyond_ten_years_or_a_key_that_is_no_tenant_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=named):
        RetentionSettings()


def test_the_longest_period_still_gives_a_date_and_an_older_recorded_one_counts_from_the_calendars_start() -> None:
    longest = RetentionPeriods(closed_needs_days=MAX_RETENTION_DAYS)
    assert cutoff(NOW, longest, Period.CLOSED_NEEDS) == NOW - timedelta(days=MAX_RETENTION_DAYS)
    assert cutoff_days(NOW, 1_000_000) == datetime.min.replace(tzinfo=UTC)


def test_a_coarse_schedule_keeps_the_days_but_not_the_hours_and_is_still_a_schedule() -> None:
    one_off = {"kind": "one_off", "start": "2026-12-03T09:00:00+01:00", "end": "2026-12-03T12:00:00+01:00"}
    weekly = {
        "kind": "weekly",
        "slots": [
            {"weekday": "tuesday", "start": "16:00:00", "end": "19:00:00"},
            {"weekday": "tuesday", "start": "08:00:00", "end": "09:00:00"},
            {"weekday": "friday", "start": "10:00:00", "end": "11:00:00"},
        ],
        "starts_on": "2026-12-01",
        "ends_on": "2027-06-30",
    }
    schedule: TypeAdapter[Schedule] = TypeAdapter(Schedule)

    day = coarse_schedule(one_off)
    weekdays = coarse_schedule(weekly)

    assert day == {"kind": "one_off", "start": "2026-12-03T00:00:00+01:00", "end": "2026-12-04T00:00:00+01:00"}
    assert [(slot["weekday"], slot["start"], slot["end"]) for slot in weekdays["slots"]] == [
        ("tuesday", "00:00:00", "23:59:59"),
        ("friday", "00:00:00", "23:59:59"),
    ]
    assert (weekdays["starts_on"], weekdays["ends_on"]) == ("2026-12-01", "2027-06-30")
    schedule.validate_python(day)
    schedule.validate_python(weekdays)
