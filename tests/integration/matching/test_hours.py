"""Hours volunteers log, on the real matching service, broker and database, through its HTTP API:
a volunteer who accepted a proposal logs hours (refusals name the field), corrects them, the
need's initiative or the office confirms or rejects them (a reason required), confirmed ones stay
as they are; the yearly summary; the statistics withhold a month's hours below five volunteers;
the volunteer's erasure deletes them.

One service runs for the module; the tests share its tenant and run in order.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from lotse_contracts import VolunteerErased, topics_for_tenants
from lotse_devstack import Stack, ensure_topics
from lotse_matching.api import subject_access
from lotse_matching.app import create_app
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import HoursEntry, HoursState, Store
from lotse_runtime.auth import Role
from tests.integration.matching.support import (
    ORGANISATION,
    opened,
    registered,
    registry_event,
    service_settings,
    work_topics,
)
from tests.support import events, tokens
from tests.support.running import RunningService, serving
from tests.support.subject_access import collections_naming, sections_with_records
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

PREFIX = f"h{uuid.uuid4().hex[:8]}"
TENANT, STATS = f"{PREFIX}-hours", f"{PREFIX}-stats"
BERLIN = ZoneInfo("Europe/Berlin")
ORGANISATION_NAME = "Willkommen in Mitte"


class Running(RunningService[MatchingSettings]):
    @property
    def store(self) -> Store:
        store: Store = self.app.state.matching.store
        return store


@dataclass
class World:
    matching: Running
    volunteer: str
    need: str
    today: date

    def headers(self, role: Role, subject: str | None = None, organisation: str | None = None) -> dict[str, str]:
        token = tokens.issue(subject or str(uuid.uuid4()), [role], tenant=TENANT, organisation=organisation)
        return {"Authorization": f"Bearer {token}"}

    @property
    def mine(self) -> dict[str, str]:
        return self.headers(Role.VOLUNTEER, self.volunteer)

    @property
    def coordinator(self) -> dict[str, str]:
        return self.headers(Role.COORDINATOR)

    @property
    def initiative(self) -> dict[str, str]:
        return self.headers(Role.INITIATIVE_ADMIN, organisation=ORGANISATION)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(stack: Stack) -> AsyncIterator[World]:
    await ensure_topics(stack.kafka_bootstrap, topics_for_tenants([TENANT, STATS]))
    settings = service_settings(stack, f"hours-{uuid.uuid4().hex[:8]}")
    async with serving(
        Running, stack, create_app(settings), settings, PREFIX, own_topics=work_topics(settings)
    ) as matching:
        onboarded = events.tenant_onboarded(TENANT, timezone="Europe/Berlin")
        organisation = events.organisation_registered(TENANT, ORGANISATION, name=ORGANISATION_NAME)
        volunteer = registered(TENANT, km_north=0.5)
        await matching.publish(onboarded, organisation, volunteer)
        await eventually(partial(matching.store.volunteer, TENANT, volunteer.subject), timeout=60, what="volunteer")
        await eventually(partial(matching.store.organisation, TENANT, ORGANISATION, None), what="organisation")
        today = datetime.now(BERLIN).date()
        # A weekly need that started two weeks ago: its days are the volunteer's from the day they are asked.
        schedule = {
            "kind": "weekly",
            "slots": [{"weekday": "tuesday", "start": "16:00:00", "end": "18:00:00"}],
            "starts_on": (today - timedelta(days=14)).isoformat(),
        }
        need = opened(TENANT, schedule=schedule, description="Hausaufgabenhilfe")
        await matching.publish(need)
        running = World(matching, volunteer.subject, need.subject, today)

        async def proposed() -> list[dict[str, Any]]:
            found = (await matching.http.get("/volunteers/me/proposals", headers=running.mine)).json()
            return [p for p in found if p["need_id"] == need.subject]

        (proposal,) = await eventually(proposed, what="the need proposed to the volunteer")
        accepted = await matching.http.post(
            f"/volunteers/me/proposals/{proposal['proposal_id']}/accept", headers=running.mine
        )
        assert accepted.status_code == 200, accepted.text
        yield running


def fields(response: Any) -> dict[str, str]:
    """The problem's errors by field, with the rule where the service names one."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return {e["field"]: e.get("rule", e["message"]) for e in response.json()["errors"]}


async def test_a_volunteer_logs_hours_and_refusals_name_the_field(world: World) -> None:
    http = world.matching.http
    (loggable,) = (await http.get("/volunteers/me/needs-for-hours", headers=world.mine)).json()
    assert loggable["need_id"] == world.need and loggable["organisation_name"] == ORGANISATION_NAME
    assert loggable["first_day"] == world.today.isoformat() and loggable["last_day"] is None

    entry_id = str(uuid.uuid4())
    body = {"entry_id": entry_id, "need_id": world.need, "date": world.today.isoformat(), "hours": 2, "minutes": 30}
    logged = await http.post("/volunteers/me/hours", json={**body, "note": "Mathe\n und Deutsch"}, headers=world.mine)
    assert logged.status_code == 201, logged.text
    entry = logged.json()
    assert (entry["entry_id"], entry["minutes"], entry["state"], entry["note"]) == (
        entry_id,
        150,
        "pending",
        "Mathe und Deutsch",
    )
    assert entry["description"] == "Hausaufgabenhilfe" and entry["decided_by"] is None
    again = await http.post("/volunteers/me/hours", json={**body, "note": "Mathe und Deutsch"}, headers=world.mine)
    assert again.status_code == 200 and again.json()["entry_id"] == entry_id, "sent twice, logged once"
    other = await http.post("/volunteers/me/hours", json={**body, "minutes": 0}, headers=world.mine)
    assert other.status_code == 409

    tomorrow = (world.today + timedelta(days=1)).isoformat()
    refused = {
        "date": {"need_id": world.need, "date": tomorrow, "minutes": 60},
        "need_id": {"need_id": str(uuid.uuid4()), "date": world.today.isoformat(), "minutes": 60},
    }
    for field, request in refused.items():
        response = await http.post("/volunteers/me/hours", json=request, headers=world.mine)
        assert response.status_code == 422 and field in fields(response), response.text
    assert fields(await http.post("/volunteers/me/hours", json={**refused["date"], "minutes": 0}, headers=world.mine))
    too_much = {"need_id": world.need, "date": world.today.isoformat(), "hours": 10}
    response = await http.post("/volunteers/me/hours", json=too_much, headers=world.mine)
    assert response.status_code == 422 and fields(response) == {"minutes": "too_many_per_day"}
    nothing = await http.post("/volunteers/me/hours", json={**too_much, "hours": 0}, headers=world.mine)
    assert nothing.status_code == 422 and "minutes" in fields(nothing)

    listed = (await http.get("/volunteers/me/hours", headers=world.mine)).json()
    assert [e["entry_id"] for e in listed] == [entry_id]
    summary = (await http.get("/volunteers/me/hours-summary", headers=world.mine)).json()
    assert summary["years"] == [
        {
            "year": world.today.year,
            "confirmed_minutes": 0,
            "confirmed_hours": 0.0,
            "confirmed_entries": 0,
            "pending_minutes": 150,
            "organisations": [],
        }
    ]


async def test_the_initiative_confirms_rejects_with_a_reason_and_confirmed_hours_stay(world: World) -> None:
    http = world.matching.http
    day = world.today.isoformat()
    first = (await http.get("/volunteers/me/hours", headers=world.mine)).json()[0]["entry_id"]
    second = await http.post(
        "/volunteers/me/hours", json={"need_id": world.need, "date": day, "minutes": 45}, headers=world.mine
    )
    assert second.status_code == 201, second.text
    second_id = second.json()["entry_id"]
    corrected = await http.put(
        f"/volunteers/me/hours/{first}", json={"need_id": world.need, "date": day, "hours": 3}, headers=world.mine
    )
    assert corrected.status_code == 200 and corrected.json()["minutes"] == 180

    # Another initiative of the municipality finds nothing; the need's own sees both entries.
    elsewhere = world.headers(Role.INITIATIVE_ADMIN, organisation=str(uuid.uuid4()))
    assert (await http.post(f"/tenants/{TENANT}/hours/{first}/confirm", headers=elsewhere)).status_code == 404
    theirs = (await http.get(f"/tenants/{TENANT}/hours", headers=elsewhere)).json()
    assert theirs == {"items": [], "more": False}
    pending = (await http.get(f"/tenants/{TENANT}/hours", headers=world.initiative)).json()
    assert sorted(e["entry_id"] for e in pending["items"]) == sorted([first, second_id])
    own = world.headers(Role.COORDINATOR, subject=world.volunteer)
    assert (await http.post(f"/tenants/{TENANT}/hours/{first}/confirm", headers=own)).status_code == 403

    admin_subject = str(uuid.uuid4())
    admin = world.headers(Role.INITIATIVE_ADMIN, admin_subject, ORGANISATION)
    confirmed = await http.post(f"/tenants/{TENANT}/hours/{first}/confirm", headers=admin)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["state"] == "confirmed"
    assert confirmed.json()["decided_by"] == {"subject": admin_subject, "role": "initiative-admin"}
    assert confirmed.json()["decided_at"] is not None
    assert (await http.post(f"/tenants/{TENANT}/hours/{first}/confirm", headers=world.coordinator)).status_code == 409
    change = {"need_id": world.need, "date": day, "minutes": 5}
    assert (await http.put(f"/volunteers/me/hours/{first}", json=change, headers=world.mine)).status_code == 409
    assert (await http.delete(f"/volunteers/me/hours/{first}", headers=world.mine)).status_code == 409

    missing = await http.post(f"/tenants/{TENANT}/hours/{second_id}/reject", json={"reason": "  "}, headers=admin)
    assert missing.status_code == 422 and "reason" in fields(missing)
    rejected = await http.post(
        f"/tenants/{TENANT}/hours/{second_id}/reject", json={"reason": "Das war ein anderer Termin."}, headers=admin
    )
    assert rejected.status_code == 200, rejected.text
    listed = {e["entry_id"]: e for e in (await http.get("/volunteers/me/hours", headers=world.mine)).json()}
    assert (listed[second_id]["state"], listed[second_id]["rejection_reason"]) == (
        "rejected",
        "Das war ein anderer Termin.",
    )
    everything = (await http.get(f"/tenants/{TENANT}/hours", params={"state": "all"}, headers=world.coordinator)).json()
    assert {e["entry_id"]: e["state"] for e in everything["items"]} == {first: "confirmed", second_id: "rejected"}
    assert (await http.get(f"/tenants/{TENANT}/hours", headers=world.coordinator)).json()["items"] == []

    summary = (await http.get("/volunteers/me/hours-summary", headers=world.mine)).json()
    (year,) = summary["years"]
    assert (year["confirmed_minutes"], year["confirmed_hours"], year["pending_minutes"]) == (180, 3.0, 0)
    assert year["organisations"] == [
        {"organisation_id": ORGANISATION, "organisation_name": ORGANISATION_NAME, "confirmed_minutes": 180}
    ]
    # The volunteer deletes the rejected entry.
    assert (await http.delete(f"/volunteers/me/hours/{second_id}", headers=world.mine)).status_code == 204
    assert (await http.delete(f"/volunteers/me/hours/{second_id}", headers=world.mine)).status_code == 404


async def test_the_hours_written_are_in_the_audit_trail_with_who_wrote_them_and_never_the_values(
    world: World,
) -> None:
    """The volunteer's entries, corrections and deletions and the initiative's decisions (after
    the tests above), for the tenant's data-protection officer."""
    officer_token = tokens.issue("dpo-" + uuid.uuid4().hex[:6], [Role.DATA_PROTECTION_OFFICER], tenant=TENANT)
    officer = {"Authorization": f"Bearer {officer_token}"}
    found = await world.matching.http.get(
        f"/tenants/{TENANT}/audit", params={"resource": "hours", "limit": 200}, headers=officer
    )
    assert found.status_code == 200, found.text
    entries = list(reversed(found.json()["items"]))  # oldest first
    assert {entry["subject_id"] for entry in entries} == {world.volunteer}
    by_volunteer = [(e["operation"], e["action"]) for e in entries if e["actor"] == world.volunteer]
    assert by_volunteer == [
        ("create", "POST /volunteers/me/hours"),
        ("create", "POST /volunteers/me/hours"),
        ("update", "PUT /volunteers/me/hours/{entry_id}"),
        ("delete", "DELETE /volunteers/me/hours/{entry_id}"),
    ], "a repeated post that logged nothing is no write"
    logged, _, corrected, deleted = (e for e in entries if e["actor"] == world.volunteer)
    assert {"minutes", "note", "day", "need_id", "state"} <= set(logged["fields"])
    assert corrected["fields"] == ["minutes", "note"], "the correction gave other hours and no note"
    assert deleted["fields"] == []
    decided = [e for e in entries if e["roles"] == ["initiative-admin"]]
    assert [e["action"].rsplit("/", 1)[-1] for e in decided] == ["confirm", "reject"]
    assert set(decided[0]["fields"]) == {"state", "decided_at", "decided_by"}
    assert set(decided[1]["fields"]) == {"state", "decided_at", "decided_by", "rejection_reason"}
    assert "anderer Termin" not in found.text and "Mathe" not in found.text, "field names, never the values"
    proposals = await world.matching.http.get(
        f"/tenants/{TENANT}/audit", params={"actor": world.volunteer, "resource": "proposals"}, headers=officer
    )
    (accepted,) = proposals.json()["items"]
    assert accepted["action"] == "POST /volunteers/me/proposals/{proposal_id}/accept"


async def test_the_statistics_show_a_months_hours_from_five_volunteers_on(world: World) -> None:
    """Entries written as the service stores them: five volunteers in March, four in April."""
    store = world.matching.store
    other_organisation = str(uuid.uuid4())
    logged = datetime(2026, 5, 1, tzinfo=UTC)
    for month, people, organisation in ((3, 5, ORGANISATION), (4, 4, other_organisation)):
        for number in range(people):
            entry = HoursEntry(
                id=str(uuid.uuid4()),
                tenant=STATS,
                volunteer_id=str(uuid.uuid4()),
                need_id=str(uuid.uuid4()),
                organisation_id=organisation,
                category="translation",
                day=date(2026, month, number + 1),
                minutes=90,
                note="",
                state=HoursState.CONFIRMED,
                logged_at=logged,
                updated_at=logged,
            )
            await store.put_hours(entry, None)
    coordinator = {"Authorization": f"Bearer {tokens.issue(str(uuid.uuid4()), [Role.COORDINATOR], tenant=STATS)}"}
    answer = await world.matching.http.get(f"/tenants/{STATS}/statistics", headers=coordinator)
    assert answer.status_code == 200, answer.text
    hours = answer.json()["hours"]
    assert hours["by_month"] == [
        {"month": "2026-03", "hours": 7.5, "volunteers": 5},
        {"month": "2026-04", "hours": None, "volunteers": None},
    ]
    assert hours["by_category"] == [{"category": "translation", "hours": 13.5, "volunteers": 9}]
    initiative_token = tokens.issue(
        str(uuid.uuid4()), [Role.INITIATIVE_ADMIN], tenant=STATS, organisation=other_organisation
    )
    own = await world.matching.http.get(
        f"/tenants/{STATS}/statistics", headers={"Authorization": f"Bearer {initiative_token}"}
    )
    assert own.json()["hours"] == {
        "by_month": [{"month": "2026-04", "hours": None, "volunteers": None}],
        "by_category": [{"category": "translation", "hours": None, "volunteers": None}],
    }


async def test_the_subject_access_export_holds_every_collection_about_the_volunteer(world: World) -> None:
    """Sections per collection, the feed's secret digest withheld; only the volunteer and the
    office may ask, and no collection naming the volunteer is left out."""
    http, path = world.matching.http, f"/tenants/{TENANT}/volunteers/{world.volunteer}/subject-access"
    assert (await http.post("/volunteers/me/calendar-feed", headers=world.mine)).status_code in {200, 201}
    feed = await world.matching.store.calendar_feed(TENANT, world.volunteer)
    assert feed is not None

    mine = await http.get(path, headers=world.mine)
    assert mine.status_code == 200, mine.text
    export = mine.json()
    assert (export["service"], export["tenant"], export["volunteer_id"]) == ("matching", TENANT, world.volunteer)
    assert sections_with_records(export) == {
        "profile",
        "proposals",
        "committed_needs",
        "calendar_feed",
        "hours",
        "audit",
    }
    assert {entry["actor"] for entry in export["audit"]["records"]} >= {world.volunteer, "system"}
    assert {p["need_id"] for p in export["proposals"]["records"]} == {world.need}
    (committed,) = export["committed_needs"]["records"]
    assert committed["need_id"] == world.need and committed["details"]["description"] == "Hausaufgabenhilfe"
    assert set(committed["staffing"]) == {"state"}, "the need, not who else committed to it"
    assert {entry["volunteer_id"] for entry in export["hours"]["records"]} == {world.volunteer}
    assert export["calendar_feed"]["withheld"] == ["secret_sha256"]
    assert feed.secret_sha256 not in mine.text
    assert export["calendar_feed"]["records"][0]["secret_sha256"] == "(withheld)"
    # Every collection naming the volunteer is a section (the outbox's events are the proposals').
    held = await collections_naming(world.matching.store.database, world.volunteer)
    assert {"volunteers", "proposals", "needs", "calendar_feeds", "hours", "audit"} <= held
    assert held <= {*subject_access.COLLECTIONS.values(), *subject_access.NOT_SECTIONS}, "a collection is missing"

    unstated = await http.get(path, headers=world.coordinator)  # the office states the written request
    assert unstated.status_code == 422 and unstated.json()["errors"][0]["field"] == "query.request_date"
    stated = {"request_date": datetime.now(UTC).date().isoformat()}
    assert (await http.get(path, params=stated, headers=world.coordinator)).json()["hours"] == export["hours"]
    # The office's export is a read in the trail (the volunteer's own is none), naming the request.
    officer = world.headers(Role.DATA_PROTECTION_OFFICER)
    reads = await http.get(
        f"/tenants/{TENANT}/audit", params={"resource": f"volunteers/{world.volunteer}"}, headers=officer
    )
    (read,) = reads.json()["items"]
    assert (read["operation"], read["roles"], read["subject_id"]) == ("read", ["coordinator"], world.volunteer)
    assert read["action"].endswith(
        f"(subject-access export on the written request received on {stated['request_date']})"
    )
    assert {"hours", "proposals", "profile"} <= set(read["fields"])
    other_volunteer = await http.get(path, headers=world.headers(Role.VOLUNTEER))
    assert other_volunteer.status_code == 404
    assert (await http.get(path, headers=world.initiative)).status_code == 403
    other_tenant = tokens.issue(str(uuid.uuid4()), [Role.COORDINATOR], tenant=STATS)
    assert (await http.get(path, headers={"Authorization": f"Bearer {other_tenant}"})).status_code == 404


async def test_the_volunteers_erasure_deletes_their_hours(world: World) -> None:
    store = world.matching.store
    assert await store.hours_of_volunteer(TENANT, world.volunteer)
    erased = registry_event(
        VolunteerErased,
        TENANT,
        world.volunteer,
        9,
        {"volunteer_id": world.volunteer, "erased_at": datetime.now(UTC).isoformat()},
    )
    await world.matching.publish(erased)

    async def gone() -> bool:
        return await store.hours_of_volunteer(TENANT, world.volunteer) == []

    await eventually(gone, what="the volunteer's hours deleted")
    listed = await world.matching.http.get("/volunteers/me/hours", headers=world.mine)
    assert listed.status_code == 200 and listed.json() == []
    body = {"need_id": world.need, "date": world.today.isoformat(), "minutes": 30}
    assert (await world.matching.http.post("/volunteers/me/hours", json=body, headers=world.mine)).status_code == 404
    assert await store.database["hours"].count_documents({"tenant": TENANT}) == 0
