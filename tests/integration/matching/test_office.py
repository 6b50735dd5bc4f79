"""The coordination office's console over HTTP, on the real matching service, broker and database:
the dashboard, one need's staffing, a proposal the office chose (checked first, refused with each
broken rule named, made with an Idempotency-Key), an answer recorded by phone, a release and a new
proposal round, each with the events notifications and the registry read.

One service runs for the module; every test has its own tenant. Who else may use these routes is
tests/integration/matching/test_tenant_isolation.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
import pytest_asyncio

from lotse_contracts import Envelope, VolunteerRegistered, topics_for_tenants
from lotse_devstack import Stack, ensure_topics
from lotse_runtime.auth import Role
from lotse_runtime.problems import PROBLEM_JSON
from tests.integration.matching.support import (
    ORGANISATION,
    WEEK,
    RunningMatching,
    opened,
    registered,
    registry_event,
    service_settings,
    serving,
    tenant_event,
    volunteer_data,
)
from tests.support import tokens
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

PREFIX = f"o{uuid.uuid4().hex[:8]}"
TENANTS = {name: f"{PREFIX}-{name}" for name in ("propose", "answer", "admin", "audit")}
PROPOSALS = "lotse.matching.proposals.v1"
NO_ARABIC = (("de", "native"),)
COORDINATOR = "coordinator-" + uuid.uuid4().hex[:6]


class Running(RunningMatching):
    async def volunteers(self, tenant: str, *events: Envelope[Any]) -> None:
        for event in events:
            await self.publish(event)
        for event in events:
            await eventually(partial(self.store.volunteer, tenant, event.subject), what="volunteer known")

    async def wait_events(
        self, tenant: str, need_id: str, done: Callable[[list[Envelope[Any]]], bool], what: str
    ) -> list[Envelope[Any]]:
        async def probe() -> list[Envelope[Any]] | None:
            found = self.reader.events(tenant, need_id)
            return found if done(found) else None

        return await eventually(probe, what=what)


def opened_later(tenant: str, **details: Any) -> Envelope[Any]:
    """A weekly need on Tuesday afternoons from three weeks on: nothing about it is soon, whenever
    the test runs."""
    starts_on = datetime.now(UTC).date() + timedelta(days=21)
    schedule = {
        "kind": "weekly",
        "slots": [{"weekday": "tuesday", "start": "16:00:00", "end": "18:00:00"}],
        "starts_on": starts_on.isoformat(),
    }
    return opened(tenant, schedule=schedule, **details)


def office(tenant: str, role: Role = Role.COORDINATOR, organisation: str | None = None) -> dict[str, str]:
    token = tokens.issue(COORDINATOR, [role], tenant=tenant, organisation=organisation)
    return {"Authorization": f"Bearer {token}"}


def volunteer_page(tenant: str, volunteer_id: str) -> str:
    return f"/tenants/{tenant}/volunteers/{volunteer_id}/staffing"


def kinds(events: list[Envelope[Any]]) -> list[str]:
    return [event.type.split(".")[-2] for event in events]


def at_least(kind: str, count: int) -> Callable[[list[Envelope[Any]]], bool]:
    return lambda events: kinds(events).count(kind) >= count


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def matching(stack: Stack) -> AsyncIterator[Running]:
    await ensure_topics(stack.kafka_bootstrap, topics_for_tenants(TENANTS.values()))
    policies = {tenant: {"proposals_per_round": 2} for tenant in TENANTS.values()}
    settings = service_settings(stack, f"office-{uuid.uuid4().hex[:8]}", tenant_policies=policies)
    async with serving(Running, stack, settings, [PROPOSALS], PREFIX) as running:
        for tenant in TENANTS.values():
            await running.publish(tenant_event(tenant))
        for tenant in TENANTS.values():
            await eventually(partial(running.store.tenant, tenant), timeout=60, what="tenant onboarded")
        yield running


async def test_the_office_checks_and_proposes_a_volunteer_it_chose_once_per_idempotency_key(matching: Running) -> None:
    tenant = TENANTS["propose"]
    near, middle, far = (registered(tenant, km_north=km) for km in (0.5, 1.5, 3.0))
    no_arabic = registered(tenant, km_north=0.2, languages=NO_ARABIC)
    await matching.volunteers(tenant, near, middle, far, no_arabic)
    need = opened_later(tenant)
    await matching.publish(need)
    await matching.wait_events(tenant, need.subject, at_least("proposed", 2), "the first round")
    headers = office(tenant)
    base = f"/tenants/{tenant}/needs/{need.subject}"

    board = (await matching.http.get(f"/tenants/{tenant}/dashboard", headers=headers)).json()
    (waiting,) = board["waiting_for_answers"]
    assert (waiting["need_id"], waiting["open_proposals"], waiting["committed"]) == (need.subject, 2, 0)
    assert waiting["next_step"] == "wait_for_answers" and waiting["district"] == "Mitte"
    assert board["not_fully_proposed"] == [] and len(board["expiring_proposals"]) == 0
    elsewhere = await matching.http.get(f"/tenants/{tenant}/dashboard?district=Nord", headers=headers)
    assert elsewhere.json()["waiting_for_answers"] == []
    not_a_date = await matching.http.get(f"/tenants/{tenant}/dashboard?starts_from=0", headers=headers)
    assert not_a_date.status_code == 422 and not_a_date.json()["errors"][0]["field"] == "query.starts_from"

    check = await matching.http.get(f"{base}/candidates/{far.subject}", headers=headers)
    assert check.status_code == 200, check.text
    assert check.json()["fits"] is True and check.json()["broken_rules"] == []
    assert "about 3.5 km away" in [reason["detail"] for reason in check.json()["reasons"]]
    refused_check = (await matching.http.get(f"{base}/candidates/{no_arabic.subject}", headers=headers)).json()
    assert refused_check["fits"] is False and [b["rule"] for b in refused_check["broken_rules"]] == ["languages"]

    refused = await matching.http.post(f"{base}/proposals", json={"volunteer_id": no_arabic.subject}, headers=headers)
    assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM_JSON
    assert refused.json()["broken_rules"] == [{"rule": "languages", "detail": "Arabic B2 needed, speaks none"}]
    assert refused.json()["errors"][0]["field"] == "volunteer_id"
    asked_again = await matching.http.post(f"{base}/proposals", json={"volunteer_id": near.subject}, headers=headers)
    assert asked_again.status_code == 422 and asked_again.json()["broken_rules"][0]["rule"] == "already_proposed"

    once = {**headers, "Idempotency-Key": "propose-far"}
    made = await matching.http.post(f"{base}/proposals", json={"volunteer_id": far.subject}, headers=once)
    assert made.status_code == 201, made.text
    (proposal,) = made.json()["proposals"]
    assert made.json()["outcome"] == "proposed" and proposal["volunteer_id"] == far.subject
    assert (
        proposal["proposed_by"] == {"subject": COORDINATOR, "role": "coordinator"} and proposal["state"] == "proposed"
    )
    repeated = await matching.http.post(f"{base}/proposals", json={"volunteer_id": far.subject}, headers=once)
    assert repeated.status_code == 201 and repeated.headers["idempotent-replayed"] == "true"
    assert repeated.json()["proposals"][0]["proposal_id"] == proposal["proposal_id"]
    other_body = await matching.http.post(f"{base}/proposals", json={"volunteer_id": middle.subject}, headers=once)
    assert other_body.status_code == 422 and other_body.json()["title"] == "Idempotency-Key reused"

    events = await matching.wait_events(tenant, need.subject, at_least("proposed", 3), "the office's proposal")
    office_made = [e for e in events if e.type.endswith(".proposed.v1") and str(e.data.volunteer_id) == far.subject]
    assert len(office_made) == 1 and str(office_made[0].data.proposal_id) == proposal["proposal_id"]
    assert [r.model_dump(mode="json") for r in office_made[0].data.reasons] == proposal["reasons"]
    stored = await matching.store.proposals.find({"tenant": tenant, "volunteer_id": far.subject}).to_list()
    assert len(stored) == 1 and stored[0]["proposed_by"] == {"subject": COORDINATOR, "role": "coordinator"}
    request = await matching.store.database["office_requests"].find_one({"tenant": tenant})
    assert request is not None and request["key"] == "propose-far" and request["outcome"] == "proposed"


async def test_an_answer_by_phone_a_release_and_a_new_round_go_out_as_events_with_who_did_them(
    matching: Running,
) -> None:
    tenant = TENANTS["answer"]
    near, middle, far = (registered(tenant, km_north=km) for km in (0.5, 1.5, 3.0))
    await matching.volunteers(tenant, near, middle, far)
    need = opened_later(tenant)
    await matching.publish(need)
    first, second = await matching.wait_events(tenant, need.subject, at_least("proposed", 2), "the first round")
    headers = office(tenant)
    base = f"/tenants/{tenant}/needs/{need.subject}"

    yes = await matching.http.post(
        f"{base}/proposals/{first.data.proposal_id}/answer", json={"choice": "accept"}, headers=headers
    )
    assert yes.status_code == 200, yes.text
    assert yes.json()["outcome"] == "accepted"
    answered = yes.json()["proposals"][0]
    assert (answered["state"], answered["answered_via"]) == ("accepted", "coordination_office")
    assert answered["recorded_by"] == {"subject": COORDINATOR, "role": "coordinator"}
    again = await matching.http.post(
        f"{base}/proposals/{first.data.proposal_id}/answer", json={"choice": "decline"}, headers=headers
    )
    assert again.status_code == 409 and again.json()["outcome"] == "already_accepted"
    withdrawn = await matching.http.post(
        f"{base}/proposals/{second.data.proposal_id}/answer", json={"choice": "accept"}, headers=headers
    )
    assert withdrawn.status_code == 409 and withdrawn.json()["outcome"] == "no_longer_needed", "staffed already"
    events = await matching.wait_events(tenant, need.subject, at_least("staffed", 1), "the need staffed")
    (accepted,) = [e for e in events if e.type.endswith(".accepted.v1")]
    assert accepted.data.answered_via == "coordination_office"
    engaged = (await matching.http.get(volunteer_page(tenant, near.subject), headers=headers)).json()
    assert engaged["committed"] == [need.subject] and engaged["proposals"][0]["state"] == "accepted"

    released = await matching.http.post(f"{base}/committed/{near.subject}/release", headers=headers)
    assert released.status_code == 200 and released.json()["outcome"] == "stepped_back", released.text
    not_committed = await matching.http.post(f"{base}/committed/{near.subject}/release", headers=headers)
    assert not_committed.status_code == 409 and not_committed.json()["outcome"] == "not_committed"
    events = await matching.wait_events(tenant, need.subject, at_least("proposed", 3), "the next person asked")
    assert kinds(events)[-2:] == ["stepped_back", "proposed"] and str(events[-1].data.volunteer_id) == far.subject

    declined = await matching.http.post(
        f"{base}/proposals/{events[-1].data.proposal_id}/answer",
        json={"choice": "decline", "reason": "no_time"},
        headers=headers,
    )
    assert declined.status_code == 200 and declined.json()["proposals"][0]["decline_reason"] == "no_time"
    events = await matching.wait_events(tenant, need.subject, at_least("unstaffed", 1), "nobody left")
    (refusal,) = [e for e in events if e.type.endswith(".declined.v1")]
    assert (refusal.data.answered_via, refusal.data.reason) == ("coordination_office", "no_time")

    board = (await matching.http.get(f"/tenants/{tenant}/dashboard", headers=headers)).json()
    assert [(n["need_id"], n["next_step"]) for n in board["unstaffed"]] == [(need.subject, "start_new_round")]

    round_key = {**headers, "Idempotency-Key": "round-after-sick-note"}
    started = await matching.http.post(f"{base}/rounds", headers=round_key)
    assert started.status_code == 200 and started.json()["outcome"] == "round_started", started.text
    # Middle's proposal was withdrawn when the need was staffed and far declined: both are asked
    # again, best first; near, who was released, is not.
    assert [p["volunteer_id"] for p in started.json()["proposals"]] == [middle.subject, far.subject]
    replayed = await matching.http.post(f"{base}/rounds", headers=round_key)
    assert replayed.json() == started.json() and replayed.headers["idempotent-replayed"] == "true"
    events = await matching.wait_events(tenant, need.subject, at_least("proposed", 5), "the new round")

    staffing = (await matching.http.get(f"{base}/staffing", headers=headers)).json()
    assert staffing["round_started_by"] == {"subject": COORDINATOR, "role": "coordinator"}
    by_volunteer = {(p["volunteer_id"], p["state"]): p for p in staffing["proposals"]}
    assert by_volunteer[(near.subject, "stepped_back")]["released_by"]["subject"] == COORDINATOR
    assert by_volunteer[(far.subject, "declined")]["recorded_by"]["subject"] == COORDINATOR
    assert {(v, s) for v, s in by_volunteer if s == "proposed"} == {
        (middle.subject, "proposed"),
        (far.subject, "proposed"),
    }
    assert staffing["committed"] == [] and staffing["need"]["next_step"] == "wait_for_answers"
    assert kinds(events).count("proposed") == 5, "the repeated round asked nobody"

    # Each volunteer's page: near accepted and was released by the office; middle was asked twice.
    released_page = (await matching.http.get(volunteer_page(tenant, near.subject), headers=headers)).json()
    assert [(p["need_id"], p["state"]) for p in released_page["proposals"]] == [(need.subject, "stepped_back")]
    assert released_page["proposals"][0]["released_by"] == {"subject": COORDINATOR, "role": "coordinator"}
    assert released_page["committed"] == []
    (brief,) = released_page["needs"]
    assert (brief["need_id"], brief["status"], brief["state"], brief["district"]) == (
        need.subject,
        "open",
        "open",
        "Mitte",
    )
    asked_twice = (await matching.http.get(volunteer_page(tenant, middle.subject), headers=headers)).json()
    assert [p["state"] for p in asked_twice["proposals"]] == ["proposed", "withdrawn"], "newest first"
    unknown = await matching.http.get(volunteer_page(tenant, str(uuid.uuid4())), headers=headers)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM_JSON


async def test_an_initiative_admin_acts_on_its_own_needs_with_its_own_volunteers(matching: Running) -> None:
    tenant = TENANTS["admin"]
    other_organisation = str(uuid.uuid4())
    ours = registered(tenant, km_north=0.5)  # the need's organisation
    availability = {"weekly_slots": WEEK, "periods": [], "unavailable": [], "max_concurrent_engagements": 2}
    theirs_id = str(uuid.uuid4())
    theirs = registry_event(
        VolunteerRegistered,
        tenant,
        theirs_id,
        1,
        {
            **volunteer_data(theirs_id, km_north=0.7),
            "availability": availability,
            "organisation_id": other_organisation,
        },
    )
    await matching.volunteers(tenant, ours, theirs)
    need = opened_later(tenant, needed=3)
    await matching.publish(need)
    await matching.wait_events(tenant, need.subject, at_least("proposed", 2), "the first round")
    base = f"/tenants/{tenant}/needs/{need.subject}"

    admin = office(tenant, Role.INITIATIVE_ADMIN, ORGANISATION)
    board = (await matching.http.get(f"/tenants/{tenant}/dashboard", headers=admin)).json()
    assert [n["need_id"] for n in board["not_fully_proposed"]] == [need.subject]
    staffing = await matching.http.get(f"{base}/staffing", headers=admin)
    assert staffing.status_code == 200 and len(staffing.json()["proposals"]) == 2
    # Both were asked by the round; the other organisation's volunteer is not the admin's to look at.
    assert (await matching.http.get(f"{base}/candidates/{theirs_id}", headers=admin)).status_code == 404
    mine = await matching.http.get(f"{base}/candidates/{ours.subject}", headers=admin)
    assert mine.status_code == 200 and mine.json()["broken_rules"][0]["rule"] == "already_proposed"

    # A volunteer's page: the admin's own volunteer, not the other organisation's.
    own = await matching.http.get(volunteer_page(tenant, ours.subject), headers=admin)
    assert own.status_code == 200 and [p["need_id"] for p in own.json()["proposals"]] == [need.subject]
    assert (await matching.http.get(volunteer_page(tenant, theirs_id), headers=admin)).status_code == 404

    stranger = office(tenant, Role.INITIATIVE_ADMIN, other_organisation)
    board = (await matching.http.get(f"/tenants/{tenant}/dashboard", headers=stranger)).json()
    assert all(board[name] == [] for name in board if name != "generated_at")
    # Their volunteer was asked for our organisation's need: that need is not theirs to see.
    their_own = (await matching.http.get(volunteer_page(tenant, theirs_id), headers=stranger)).json()
    assert their_own["proposals"] == [] and their_own["needs"] == [] and their_own["committed"] == []
    assert (await matching.http.get(volunteer_page(tenant, ours.subject), headers=stranger)).status_code == 404
    assert (await matching.http.get(f"{base}/staffing", headers=stranger)).status_code == 404
    assert (await matching.http.post(f"{base}/rounds", headers=stranger)).status_code == 404


def person(tenant: str, subject: str, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.issue(subject, [role], tenant=tenant)}"}


async def test_the_offices_and_the_volunteers_writes_are_in_the_audit_trail_for_its_officer_only(
    matching: Running,
) -> None:
    """Who proposed, answered, released or accepted, with the fields written (never the values),
    filed about the volunteer and the need; the registry's events are the system's. Only the
    tenant's data-protection officer searches and exports the trail."""
    tenant = TENANTS["audit"]
    near, far = (registered(tenant, km_north=km) for km in (0.5, 3.0))
    await matching.volunteers(tenant, near, far)
    need = opened_later(tenant, needed=2)
    await matching.publish(need)
    first, second = await matching.wait_events(tenant, need.subject, at_least("proposed", 2), "the first round")
    headers, base = office(tenant), f"/tenants/{tenant}/needs/{need.subject}"
    by_phone = await matching.http.post(
        f"{base}/proposals/{first.data.proposal_id}/answer", json={"choice": "accept"}, headers=headers
    )
    assert by_phone.status_code == 200, by_phone.text
    volunteer = str(second.data.volunteer_id)
    own = person(tenant, volunteer, Role.VOLUNTEER)
    accepted = await matching.http.post(f"/volunteers/me/proposals/{second.data.proposal_id}/accept", headers=own)
    assert accepted.status_code == 200, accepted.text
    released = await matching.http.post(f"{base}/committed/{first.data.volunteer_id}/release", headers=headers)
    assert released.status_code == 200, released.text

    officer = person(tenant, "dpo-" + uuid.uuid4().hex[:6], Role.DATA_PROTECTION_OFFICER)
    trail = f"/tenants/{tenant}/audit"
    page = await matching.http.get(trail, params={"subject": str(first.data.volunteer_id)}, headers=officer)
    assert page.status_code == 200, page.text
    about_first = list(reversed(page.json()["items"]))  # oldest first
    assert [(e["actor"], e["operation"], e["resource_type"]) for e in about_first] == [
        ("system", "create", "proposals"),
        (COORDINATOR, "update", "proposals"),
        (COORDINATOR, "update", "proposals"),
    ]
    made, answered, release = about_first
    assert made["action"] == f"event {need.type}" and made["roles"] == []
    assert {"status", "volunteer_id", "need_id"} <= set(made["fields"])
    assert answered["action"] == "POST /tenants/{tenant}/needs/{need_id}/proposals/{proposal_id}/answer"
    assert answered["roles"] == ["coordinator"] and answered["resource_id"] == str(first.data.proposal_id)
    assert {"status", "answered_at", "answered_via", "recorded_by"} <= set(answered["fields"])
    assert release["action"] == "POST /tenants/{tenant}/needs/{need_id}/committed/{volunteer_id}/release"
    assert {"status", "released_by"} <= set(release["fields"])

    mine = await matching.http.get(trail, params={"actor": volunteer}, headers=officer)
    (on_need, on_proposal) = sorted(mine.json()["items"], key=lambda entry: entry["resource_type"])
    assert (on_need["resource_type"], on_need["subject_id"]) == ("needs", need.subject)
    assert on_need["action"] == "POST /volunteers/me/proposals/{proposal_id}/accept"
    assert on_need["roles"] == ["volunteer"] and "staffing.committed" in on_need["fields"]
    assert (on_proposal["resource_type"], on_proposal["subject_id"]) == ("proposals", volunteer)
    about_need = await matching.http.get(trail, params={"resource": f"needs/{need.subject}"}, headers=officer)
    assert {entry["actor"] for entry in about_need.json()["items"]} == {"system", COORDINATOR, volunteer}
    # Field names only: none of the values written (the channel an answer came by, say) is there.
    everything = await matching.http.get(f"{trail}.json", headers=officer)
    assert everything.status_code == 200 and "coordination_office" not in everything.text
    assert len(everything.json()) >= 7 and {e["tenant"] for e in everything.json()} == {tenant}
    as_csv = await matching.http.get(f"{trail}.csv", headers=officer)
    assert as_csv.status_code == 200 and as_csv.text.count("\r\n") == len(everything.json()) + 1

    other_officer = person(TENANTS["admin"], "dpo", Role.DATA_PROTECTION_OFFICER)
    for who, status in ((other_officer, 404), (headers, 403), (own, 403), ({}, 401)):
        for path in (trail, f"{trail}.csv", f"{trail}.json"):
            assert (await matching.http.get(path, headers=who)).status_code == status, (path, status)
    bad = await matching.http.get(trail, params={"to": "2026-02-30"}, headers=officer)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.to"
