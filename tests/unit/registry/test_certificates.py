"""Certificate checks, their expiry notices, the named contact person and the volunteer search:
the pure rules (domain.py) and the use cases (service.py) on an in-memory scope."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lotse_contracts import (
    CertificateCheck,
    VolunteerCertificateChecked,
    VolunteerCertificateCheckRevoked,
    VolunteerCertificateExpiring,
    VolunteerContactPersonChanged,
)
from lotse_contracts.events.values import CertificateKind, LanguageLevel, Weekday
from lotse_contracts.events.volunteers import WithdrawalReason
from lotse_registry import domain, service
from lotse_registry.domain import (
    CheckStatus,
    Circle,
    DomainError,
    LanguageWish,
    RevocationReason,
    VolunteerSearch,
)
from lotse_registry.store import CERTIFICATE_CHECKS, STAFF, VOLUNTEERS, Document, staff_document_id
from lotse_runtime.auth import Principal, Role
from tests.unit.registry.fakes import FakeScope
from tests.unit.registry.test_service import TENANT, refused, with_volunteer, world

NOW = datetime(2026, 11, 25, 10, tzinfo=UTC)
TODAY = NOW.date()
OFFICE = Principal("jana", TENANT, frozenset({Role.COORDINATOR}))
POLICE = CertificateKind.EXTENDED_POLICE_CERTIFICATE
ZONE = ZoneInfo("Europe/Berlin")  # the unit tests' tenant's time zone (the contract example)


def check(kind: CertificateKind = POLICE, seen_on: str = "2026-11-20", valid_until: str = "2031-11-19") -> Any:
    return CertificateCheck.model_validate({"kind": kind, "seen_on": seen_on, "valid_until": valid_until})


async def record(scope: FakeScope, volunteer: Document, given: Any, now: datetime = NOW) -> Document:
    return await scope.run(lambda s: service.record_certificate_check(s, volunteer, given, by=OFFICE, now=now))


async def current(scope: FakeScope, volunteer_id: str) -> Document:
    return await service.load(scope, VOLUNTEERS, volunteer_id, "volunteer")


# --- the rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seen_on", "valid_until", "field"),
    [
        (date(2026, 11, 26), date(2031, 1, 1), "seen_on"),  # not yet seen
        (date(2026, 11, 20), date(2026, 11, 19), "valid_until"),  # ends before it was seen
        (date(2020, 1, 1), date(2026, 11, 24), "valid_until"),  # ran out yesterday
    ],
)
def test_a_check_that_cannot_be_true_is_refused_naming_the_field(seen_on: date, valid_until: date, field: str) -> None:
    problem = domain.check_problem(seen_on, valid_until, TODAY)
    assert problem is not None and (problem.status, problem.field) == (422, field)


def test_a_check_seen_today_and_valid_today_is_fine() -> None:
    assert domain.check_problem(TODAY, TODAY, TODAY) is None


def test_the_notices_ahead_leave_out_those_whose_day_has_come() -> None:
    until = TODAY + timedelta(weeks=10)
    assert domain.pending_notices(until, NOW, ZONE) == [8, 2]
    assert domain.pending_notices(TODAY + timedelta(weeks=5), NOW, ZONE) == [2]
    assert domain.pending_notices(TODAY + timedelta(weeks=1), NOW, ZONE) == []
    assert domain.next_notice_at(until, [8, 2], ZONE) == datetime.combine(
        until - timedelta(weeks=8), time.min, tzinfo=ZONE
    )
    assert domain.next_notice_at(until, [], ZONE) is None


def test_of_two_notices_due_at_once_only_the_nearer_is_sent() -> None:
    until = date(2027, 3, 1)
    on_eight_weeks = domain.notice_due_at(until, 8, ZONE)
    assert domain.notice_now(until, [8, 2], on_eight_weeks - timedelta(seconds=1), ZONE) == domain.NoticeDecision(
        None, [8, 2]
    )
    assert domain.notice_now(until, [8, 2], on_eight_weeks, ZONE) == domain.NoticeDecision(8, [2])
    after_an_outage = domain.notice_due_at(until, 2, ZONE) + timedelta(days=1)
    assert domain.notice_now(until, [8, 2], after_an_outage, ZONE) == domain.NoticeDecision(2, [])
    too_late = datetime.combine(until + timedelta(days=1), time.min, tzinfo=ZONE)
    assert domain.notice_now(until, [2], too_late, ZONE) == domain.NoticeDecision(None, [])


def test_a_notice_is_due_at_the_start_of_its_day_in_the_municipality_not_in_utc() -> None:
    until = date(2027, 3, 1)  # winter: Berlin is UTC+1
    due = domain.notice_due_at(until, 2, ZONE)
    assert due == datetime(2027, 2, 14, 23, tzinfo=UTC)  # 15 February, 00:00 in Berlin
    assert domain.notice_now(until, [2], due, ZONE) == domain.NoticeDecision(2, [])
    # Just after midnight in Berlin on the day after the last valid day, UTC is still on that day.
    after_the_last_day = datetime(2027, 3, 1, 23, 30, tzinfo=UTC)
    assert domain.notice_now(until, [2], after_the_last_day, ZONE) == domain.NoticeDecision(None, [])
    assert domain.tenant_today({"timezone": "Europe/Berlin"}, after_the_last_day) == date(2027, 3, 2)


def test_a_check_runs_out_at_midnight_in_the_municipality() -> None:
    volunteer = {"certificate_checks": [{"kind": POLICE.value, "valid_until": "2027-03-01"}]}
    just_after_midnight_in_berlin = datetime(2027, 3, 1, 23, 30, tzinfo=UTC)
    today = domain.tenant_today({"timezone": "Europe/Berlin"}, just_after_midnight_in_berlin)
    (status,) = domain.certificate_status(volunteer, today)
    assert status["state"] == domain.CertificateState.CHECK_EXPIRED


def test_a_declared_certificate_stays_visible_as_declared_not_checked() -> None:
    volunteer = {
        "certificates": [
            {"kind": "extended_police_certificate", "issued_on": "2026-01-01", "valid_until": "2099-12-31"}
        ],
        "certificate_checks": [{"kind": "first_aid", "seen_on": "2024-01-01", "valid_until": "2026-11-24"}],
    }
    assert domain.certificate_status(volunteer, TODAY) == [
        {"kind": "extended_police_certificate", "declared": True, "state": "declared_not_checked", "valid_until": None},
        {"kind": "first_aid", "declared": False, "state": "check_expired", "valid_until": "2026-11-24"},
    ]
    volunteer["certificate_checks"].append(
        {"kind": "extended_police_certificate", "seen_on": "2026-11-20", "valid_until": "2031-11-19"}
    )
    assert domain.certificate_status(volunteer, TODAY)[0]["state"] == "checked"


def test_who_records_a_check_and_who_names_a_contact_person() -> None:
    org = str(uuid.uuid4())
    of_org, direct = {"_id": "v1", "organisation_id": org}, {"_id": "v2", "organisation_id": None}
    admin = Principal("admin", TENANT, frozenset({Role.INITIATIVE_ADMIN}), org)
    other_admin = Principal("other", TENANT, frozenset({Role.INITIATIVE_ADMIN}), str(uuid.uuid4()))
    volunteer = Principal("v1", TENANT, frozenset({Role.VOLUNTEER}))
    assert domain.may_check_certificates(OFFICE, of_org) and domain.may_check_certificates(OFFICE, direct)
    assert domain.may_check_certificates(admin, of_org) and not domain.may_check_certificates(admin, direct)
    assert not domain.may_check_certificates(other_admin, of_org)
    assert not domain.may_check_certificates(volunteer, of_org)
    assert domain.may_name_contact_person(OFFICE)
    assert not any(domain.may_name_contact_person(caller) for caller in (admin, volunteer))


# --- the search's filters -----------------------------------------------------------------------


def searched(**overrides: Any) -> Document:
    document: Document = {
        "_id": "v1",
        "status": "active",
        "organisation_id": None,
        "contact": {"display_name": "Maria Schulz"},
        "skills": ["driving", "childcare"],
        "languages": [{"language": "ar", "level": "b2"}, {"language": "de", "level": "native"}],
        "home_area": {"point": {"lat": 52.52, "lon": 13.405}, "postcode": "10115"},
        "availability": {"weekly_slots": [{"weekday": "tuesday", "start": "16:00:00", "end": "19:00:00"}]},
        "certificate_checks": [
            {"kind": "extended_police_certificate", "seen_on": "2026-11-20", "valid_until": "2031-11-19"}
        ],
    }
    document.update(overrides)
    return document


@pytest.mark.parametrize(
    ("search", "found"),
    [
        (VolunteerSearch(languages=(LanguageWish("ar", LanguageLevel.B2),)), True),
        (VolunteerSearch(languages=(LanguageWish("ar", LanguageLevel.C1),)), False),
        (VolunteerSearch(languages=(LanguageWish("uk"),)), False),
        (VolunteerSearch(near=Circle(52.52 + 3 / 111.195, 13.405, 3.1)), True),  # 3 km north
        (VolunteerSearch(near=Circle(52.52 + 3 / 111.195, 13.405, 2.9)), False),
        (VolunteerSearch(available_on=Weekday.TUESDAY, available_at=time(18, 59)), True),
        (VolunteerSearch(available_on=Weekday.TUESDAY, available_at=time(19)), False),  # the slot ends at 19
        (VolunteerSearch(available_on=Weekday.MONDAY), False),
        (VolunteerSearch(available_at=time(16)), True),
        (VolunteerSearch(certificate_checked=True, today=TODAY), True),
        (VolunteerSearch(certificate_checked=False, today=TODAY), False),
        (VolunteerSearch(certificate_kind=CertificateKind.FIRST_AID, today=TODAY), False),
        (VolunteerSearch(certificate_checked=False, certificate_kind=CertificateKind.FIRST_AID, today=TODAY), True),
        (VolunteerSearch(certificate_checked=True, today=date(2031, 11, 20)), False),  # the check ran out
        (VolunteerSearch(name="schulz"), True),
        (VolunteerSearch(name="Meier"), False),
    ],
)
def test_each_filter_of_the_search_decides_alone(search: VolunteerSearch, found: bool) -> None:
    assert search.accepts(OFFICE, searched()) is found


def test_a_slot_written_with_an_offset_is_still_a_local_time() -> None:
    slots = {"weekly_slots": [{"weekday": "tuesday", "start": "16:00:00+01:00", "end": "19:00:00+01:00"}]}
    assert VolunteerSearch(available_at=time(17)).accepts(OFFICE, searched(availability=slots))


def test_a_name_is_found_only_where_the_caller_may_see_it() -> None:
    of_an_initiative = searched(organisation_id=str(uuid.uuid4()))
    assert not VolunteerSearch(name="Maria").accepts(OFFICE, of_an_initiative)
    assert VolunteerSearch().accepts(OFFICE, of_an_initiative)


def test_the_database_narrows_by_what_it_can_say_exactly() -> None:
    search = VolunteerSearch(
        status="active",
        organisation_id="org",
        skills=("driving", "childcare", "driving"),
        languages=(LanguageWish("ar", LanguageLevel.B2), LanguageWish("de")),
        postcode="10115",
        contact_person_id="staff",
    )
    assert search.query() == {
        "status": "active",
        "organisation_id": "org",
        "$and": [
            {"skills": "childcare"},
            {"skills": "driving"},
            {"languages.language": "ar"},
            {"languages.language": "de"},
        ],
        "home_area.postcode": "10115",
        "contact_person_id": "staff",
    }
    assert VolunteerSearch().query() == {}


@pytest.mark.parametrize("text", ["arabic", "ar:b3", "AR", "ar:", "a:b2", "ä"])
def test_a_language_wish_is_a_code_and_perhaps_a_level(text: str) -> None:
    with pytest.raises(DomainError) as refusal:
        LanguageWish.parse(text)
    assert (refusal.value.status, refusal.value.field) == (422, "query.language")


def test_a_language_wish_reads_its_level() -> None:
    assert LanguageWish.parse("ar") == LanguageWish("ar")
    assert LanguageWish.parse("uk:native") == LanguageWish("uk", LanguageLevel.NATIVE)


# --- recording and revoking checks ----------------------------------------------------------------


async def test_a_check_records_who_saw_it_and_tells_matching_every_check_in_force() -> None:
    scope, _ = await world()
    volunteer = await with_volunteer(scope)
    scope.outbox.clear()

    changed = await record(scope, volunteer, check(valid_until="2031-11-19"))
    await record(scope, changed, check(CertificateKind.FIRST_AID, valid_until="2027-01-10"))

    (police, first_aid) = sorted(scope.documents(CERTIFICATE_CHECKS), key=lambda d: d["kind"])
    assert police["seen_by"] == domain.staff_id(OFFICE) and police["seen_by_role"] == "coordinator"
    assert (police["status"], police["pending_notices"]) == (CheckStatus.IN_FORCE, [8, 2])
    assert police["next_notice_at"] == domain.notice_due_at(date(2031, 11, 19), 8, ZONE)
    assert first_aid["pending_notices"] == [2]  # eight weeks before 10 January 2027 has passed
    events = scope.events(VolunteerCertificateChecked)
    assert [event.version for event in events] == [volunteer["version"] + 1, volunteer["version"] + 2]
    assert [check.kind for check in events[-1].data.checks] == [POLICE, CertificateKind.FIRST_AID]
    stored = await current(scope, volunteer["_id"])
    assert [entry["check_id"] for entry in stored["certificate_checks"]] == [police["_id"], first_aid["_id"]]
    assert stored["certificates"] == volunteer["certificates"]  # the declared ones stay as they were


async def test_a_new_check_of_a_kind_replaces_the_earlier_one_which_stays_in_the_history() -> None:
    scope, _ = await world()
    volunteer = await with_volunteer(scope)
    first = await record(scope, volunteer, check(valid_until="2027-06-30"))
    second = await record(scope, first, check(seen_on="2026-11-25", valid_until="2031-11-24"))

    records = {d["valid_until"]: d for d in scope.documents(CERTIFICATE_CHECKS)}
    old, new = records["2027-06-30"], records["2031-11-24"]
    assert (old["status"], old["superseded_by"]) == (CheckStatus.SUPERSEDED, new["_id"])
    assert new["status"] == CheckStatus.IN_FORCE
    assert [entry["check_id"] for entry in second["certificate_checks"]] == [new["_id"]]
    (event,) = scope.events(VolunteerCertificateChecked)[-1:]
    assert [str(c.valid_until) for c in event.data.checks] == ["2031-11-24"]


async def test_an_impossible_check_or_one_of_a_volunteer_who_left_writes_nothing() -> None:
    scope, _ = await world()
    volunteer = await with_volunteer(scope)
    scope.outbox.clear()
    with refused(422, "valid_until: has passed"):
        await record(scope, volunteer, check(seen_on="2020-01-01", valid_until="2026-11-24"))
    withdrawn = await scope.run(
        lambda s: service.withdraw_volunteer(s, volunteer, WithdrawalReason.NO_LONGER_AVAILABLE)
    )
    scope.outbox.clear()
    with refused(409, "the volunteer is withdrawn"):
        await record(scope, withdrawn, check())
    assert scope.documents(CERTIFICATE_CHECKS) == [] and scope.outbox == []


async def test_a_revoked_check_no_longer_counts_and_stays_in_the_history() -> None:
    scope, _ = await world()
    volunteer = await record(scope, await with_volunteer(scope), check())
    (check_id,) = [entry["check_id"] for entry in volunteer["certificate_checks"]]
    scope.outbox.clear()

    revoked = await scope.run(
        lambda s: service.revoke_certificate_check(
            s, volunteer, check_id, RevocationReason.WITHDRAWN, by=OFFICE, now=NOW
        )
    )

    assert revoked["certificate_checks"] == []
    (stored,) = scope.documents(CERTIFICATE_CHECKS)
    assert (stored["status"], stored["revocation_reason"], stored["next_notice_at"]) == ("revoked", "withdrawn", None)
    (event,) = scope.events(VolunteerCertificateCheckRevoked)
    assert (event.data.kind, event.data.checks, event.version) == (POLICE, [], revoked["version"])
    with refused(409, "revoked"):
        await scope.run(
            lambda s: service.revoke_certificate_check(s, revoked, check_id, RevocationReason.OTHER, by=OFFICE, now=NOW)
        )
    other = await with_volunteer(scope)
    with refused(404, "no certificate check"):
        await scope.run(
            lambda s: service.revoke_certificate_check(s, other, check_id, RevocationReason.OTHER, by=OFFICE, now=NOW)
        )


# --- expiry notices ---------------------------------------------------------------------------


async def notice(scope: FakeScope, check_id: str, now: datetime) -> bool:
    return await scope.run(lambda s: service.send_expiry_notice(s, check_id, now))


async def test_each_notice_is_sent_once_on_its_day() -> None:
    scope, _ = await world()
    volunteer = await record(scope, await with_volunteer(scope), check(valid_until="2027-03-01"))
    (check_id,) = [entry["check_id"] for entry in volunteer["certificate_checks"]]
    eight_weeks, two_weeks = (
        domain.notice_due_at(date(2027, 3, 1), 8, ZONE),
        domain.notice_due_at(date(2027, 3, 1), 2, ZONE),
    )
    scope.outbox.clear()

    assert not await notice(scope, check_id, eight_weeks - timedelta(minutes=1))
    assert await notice(scope, check_id, eight_weeks)
    assert not await notice(scope, check_id, eight_weeks + timedelta(hours=1))  # a second pass: nothing new
    assert await notice(scope, check_id, two_weeks + timedelta(hours=3))
    assert not await notice(scope, check_id, two_weeks + timedelta(days=1))

    events = scope.events(VolunteerCertificateExpiring)
    assert [(e.data.weeks_before, str(e.data.valid_until), e.data.kind) for e in events] == [
        (8, "2027-03-01", POLICE),
        (2, "2027-03-01", POLICE),
    ]
    assert len({event.version for event in events}) == 2  # each a version of the volunteer of its own
    (stored,) = scope.documents(CERTIFICATE_CHECKS)
    assert [sent["weeks_before"] for sent in stored["notices_sent"]] == [8, 2]
    assert (stored["pending_notices"], stored["next_notice_at"]) == ([], None)


async def test_two_passes_at_once_send_one_notice() -> None:
    scope, _ = await world()
    volunteer = await record(scope, await with_volunteer(scope), check(valid_until="2027-03-01"))
    (check_id,) = [entry["check_id"] for entry in volunteer["certificate_checks"]]
    due = domain.notice_due_at(date(2027, 3, 1), 8, ZONE)
    scope.outbox.clear()

    outcomes = await asyncio.gather(notice(scope, check_id, due), notice(scope, check_id, due), return_exceptions=True)

    assert sum(outcome is True for outcome in outcomes) == 1
    assert len(scope.events(VolunteerCertificateExpiring)) == 1


async def test_a_volunteer_who_left_or_a_revoked_check_is_not_reminded() -> None:
    scope, _ = await world()
    volunteer = await record(scope, await with_volunteer(scope), check(valid_until="2027-03-01"))
    (check_id,) = [entry["check_id"] for entry in volunteer["certificate_checks"]]
    await scope.run(lambda s: service.withdraw_volunteer(s, volunteer, WithdrawalReason.NO_LONGER_AVAILABLE))
    scope.outbox.clear()

    assert not await notice(scope, check_id, domain.notice_due_at(date(2027, 3, 1), 8, ZONE))
    assert scope.outbox == []
    (stored,) = scope.documents(CERTIFICATE_CHECKS)
    assert (stored["pending_notices"], stored["next_notice_at"]) == ([], None)


async def test_erasure_deletes_every_check_of_the_volunteer() -> None:
    scope, _ = await world()
    volunteer = await record(scope, await with_volunteer(scope), check())
    other = await record(scope, await with_volunteer(scope), check())
    await scope.run(lambda s: service.erase_volunteer(s, volunteer))
    assert [d["volunteer_id"] for d in scope.documents(CERTIFICATE_CHECKS)] == [other["_id"]]


# --- the named contact person -------------------------------------------------------------------


async def test_the_contact_person_is_a_member_of_the_staff_and_the_event_carries_only_the_id() -> None:
    scope, _ = await world()
    volunteer = await with_volunteer(scope)
    staff_id = str(uuid.uuid4())
    scope.outbox.clear()
    with refused(422, "no staff member"):
        await scope.run(lambda s: service.set_contact_person(s, volunteer, staff_id))
    assert scope.outbox == []

    await scope.insert(STAFF, {"_id": staff_document_id(TENANT, staff_id), "staff_id": staff_id, "name": "Jana"})
    named = await scope.run(lambda s: service.set_contact_person(s, volunteer, staff_id))
    again = await scope.run(lambda s: service.set_contact_person(s, named, staff_id))
    none = await scope.run(lambda s: service.set_contact_person(s, again, None))

    assert named["contact_person_id"] == staff_id and again["version"] == named["version"]
    assert none["contact_person_id"] is None
    events = scope.events(VolunteerContactPersonChanged)
    assert [(str(e.data.staff_id) if e.data.staff_id else None) for e in events] == [staff_id, None]
    assert set(events[0].data.model_dump()) == {"volunteer_id", "staff_id"}
