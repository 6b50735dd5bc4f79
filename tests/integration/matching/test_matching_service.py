"""The matching service on the real broker and database: proposal rounds, answers, links,
partner answers, self-selection, withdrawal and erasure, and its read model.

One service runs for the whole module (a consumer group join costs seconds); every test has
its own tenant, so tests do not see each other's volunteers and needs.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from lotse_contracts import (
    AcceptProposal,
    DeadLetterInfo,
    DeclineProposal,
    Envelope,
    NeedUpdated,
    VolunteerCertificateChecked,
    VolunteerErased,
    VolunteerProfileUpdated,
    VolunteerWithdrawn,
    dead_letter_topic,
    new_event,
    partner_inbound_topic,
    to_bytes,
    topics_for_tenants,
)
from lotse_contracts.topics import MATCHING_WORK
from lotse_devstack import Stack, TopicSpec, ensure_topics
from lotse_matching.service import Matching
from lotse_runtime.auth import Role
from tests.integration.matching.support import (
    RunningMatching,
    Seen,
    answer_path,
    need_details,
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

NAMES = (
    "walk",
    "nobody",
    "expire",
    "links",
    "leave",
    "pick",
    "partner",
    "other",
    "model",
    "auth",
    "change",
    "restart",
    "soon",
    "edit",
)
PREFIX = f"m{uuid.uuid4().hex[:8]}"
TENANTS = {name: f"{PREFIX}-{name}" for name in NAMES}
POLICIES: dict[str, dict[str, int]] = {tenant: {"proposals_per_round": 2} for tenant in TENANTS.values()}
POLICIES[TENANTS["expire"]] = {"proposals_per_round": 1, "answer_seconds": 2}
POLICIES[TENANTS["leave"]] = {"proposals_per_round": 1}
POLICIES[TENANTS["pick"]] = {"proposals_per_round": 1}
PROPOSALS = "lotse.matching.proposals.v1"
BERLIN = ZoneInfo("Europe/Berlin")
# What the tenant's replica cannot apply goes to the dead letters of the work topic it read it
# from (this module's own: support.service_settings).
NAME = f"test-{uuid.uuid4().hex[:8]}"
WORK_DLQ = dead_letter_topic(f"{MATCHING_WORK.name}.{NAME}")
PARTNER_DLQ = dead_letter_topic(partner_inbound_topic(TENANTS["other"]))


class Running(RunningMatching):
    async def volunteers(self, tenant: str, *events: Envelope[Any]) -> None:
        """Publish registrations and wait until matching knows them (topics are not ordered
        against each other, so a need published right away could overtake them)."""
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

    def token(self, tenant: str, volunteer_id: str, role: Role = Role.VOLUNTEER) -> dict[str, str]:
        token = tokens.issue(volunteer_id, [role], tenant=tenant)
        return {"Authorization": f"Bearer {token}"}


def types(events: list[Envelope[Any]]) -> list[str]:
    return [event.type.split(".")[-2] for event in events]


def count(kind: str, at_least: int = 1) -> Callable[[list[Envelope[Any]]], bool]:
    return lambda events: types(events).count(kind) >= at_least


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def matching(stack: Stack) -> AsyncIterator[Running]:
    await ensure_topics(stack.kafka_bootstrap, topics_for_tenants(TENANTS.values()))
    settings = service_settings(
        stack,
        NAME,
        timer_interval_seconds=0.3,
        unknown_retry_attempts=3,
        tenant_policies=POLICIES,
    )
    assert dead_letter_topic(settings.work_topic) == WORK_DLQ
    await ensure_topics(stack.kafka_bootstrap, [TopicSpec(WORK_DLQ, 1)])
    async with serving(Running, stack, settings, [PROPOSALS, WORK_DLQ, PARTNER_DLQ], PREFIX) as running:
        for name, tenant in TENANTS.items():
            await running.publish(tenant_event(tenant, "uk" if name == "links" else "de"))
        # Once the tenants are in, the consumer group has joined.
        for tenant in TENANTS.values():
            await eventually(partial(running.store.tenant, tenant), timeout=60, what="tenant onboarded")
        yield running


async def test_a_need_goes_through_proposal_decline_next_proposal_acceptance_and_staffed(matching: Running) -> None:
    tenant = TENANTS["walk"]
    near, middle, far = (registered(tenant, km_north=km) for km in (0.5, 1.5, 3.0))
    no_arabic = registered(tenant, km_north=0.1, languages=(("de", "native"),))
    await matching.volunteers(tenant, near, middle, far, no_arabic)
    need = opened(tenant)
    await matching.publish(need)

    first = await matching.wait_events(tenant, need.subject, count("proposed", 2), "two proposals")
    assert [e.data.volunteer_id for e in first] == [near.data.volunteer_id, middle.data.volunteer_id]
    details = [reason.detail for reason in first[0].data.reasons]
    assert "about 1 km away" in details and "speaks Arabic (C1)" in details and "free on Tuesday afternoons" in details
    assert first[0].data.score > first[1].data.score

    answer = await matching.http.post(
        f"/volunteers/me/proposals/{first[0].data.proposal_id}/decline",
        json={"reason": "too_far"},
        headers=matching.token(tenant, near.subject),
    )
    assert answer.status_code == 200, answer.text
    events = await matching.wait_events(tenant, need.subject, count("proposed", 3), "the next proposal")
    assert types(events)[2:] == ["declined", "proposed"]
    assert events[2].data.reason == "too_far"
    assert events[3].data.volunteer_id == far.data.volunteer_id

    accept_path = answer_path(matching.settings, first[1])
    page = await matching.http.get(accept_path, params={"choice": "accept"})
    assert page.status_code == 200 and "annehmen" in page.text and '<form method="post">' in page.text
    proposal = await matching.store.proposal(tenant, str(first[1].data.proposal_id))
    assert proposal is not None and proposal["status"] == "open", "a GET alone must not answer"
    done = await matching.http.post(accept_path, data={"choice": "accept"})
    assert done.status_code == 200 and "Vielen Dank" in done.text

    events = await matching.wait_events(tenant, need.subject, count("staffed"), "the need staffed")
    assert types(events)[4:] == ["accepted", "staffed", "withdrawn"]
    assert events[5].data.volunteer_ids == [middle.data.volunteer_id]
    assert events[6].data.volunteer_id == far.data.volunteer_id and events[6].data.reason == "need_staffed"
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    assert no_arabic.data.volunteer_id not in {getattr(e.data, "volunteer_id", None) for e in events}


async def test_a_need_nobody_fits_is_escalated_and_matched_when_someone_fitting_registers(matching: Running) -> None:
    tenant = TENANTS["nobody"]
    await matching.volunteers(tenant, registered(tenant))
    need = opened(tenant, languages=(("ti", "b1"),))
    await matching.publish(need)

    events = await matching.wait_events(tenant, need.subject, count("unstaffed"), "the need unstaffed")
    assert types(events) == ["unstaffed"]
    assert events[0].data.reason == "no_candidates" and events[0].data.volunteers_needed == 1

    speaker = registered(tenant, languages=(("de", "b2"), ("ti", "native")))
    await matching.publish(speaker)
    events = await matching.wait_events(tenant, need.subject, count("proposed"), "a proposal after re-matching")
    assert events[1].data.volunteer_id == speaker.data.volunteer_id


async def test_unanswered_proposals_expire_the_next_person_is_asked_and_then_the_need_is_unstaffed(
    matching: Running,
) -> None:
    tenant = TENANTS["expire"]
    first, second = registered(tenant, km_north=0.2), registered(tenant, km_north=2.0)
    await matching.volunteers(tenant, first, second)
    need = opened(tenant)
    await matching.publish(need)

    events = await matching.wait_events(tenant, need.subject, count("unstaffed"), "both proposals expired")
    assert types(events) == ["proposed", "expired", "proposed", "expired", "unstaffed"]
    assert [e.data.volunteer_id for e in events[:4]] == [first.data.volunteer_id] * 2 + [second.data.volunteer_id] * 2
    assert events[4].data.reason == "proposals_expired"

    expired_link = answer_path(matching.settings, events[0])
    page = await matching.http.post(expired_link, data={"choice": "accept"})
    assert page.status_code == 410 and "abgelaufen" in page.text


async def test_answer_links_refuse_tampering_and_reuse_and_answer_kindly_when_already_staffed(
    matching: Running,
) -> None:
    tenant = TENANTS["links"]
    first, second = registered(tenant, km_north=0.3), registered(tenant, km_north=0.6)
    await matching.volunteers(tenant, first, second)
    need = opened(tenant)
    await matching.publish(need)
    proposals = await matching.wait_events(tenant, need.subject, count("proposed", 2), "two proposals")
    one, other = (answer_path(matching.settings, e) for e in proposals)

    tampered = one[:-2] + ("AA" if not one.endswith("AA") else "BB")
    page = await matching.http.post(tampered, data={"choice": "accept"})
    assert page.status_code == 400 and "ungültig" in page.text
    page = await matching.http.get(tampered, params={"choice": "accept"})
    assert page.status_code == 400
    untouched = await matching.store.proposal(tenant, str(proposals[0].data.proposal_id))
    assert untouched is not None and untouched["status"] == "open"

    accepted = await matching.http.post(one, data={"choice": "accept"})
    # In the volunteer's language (German), not the municipality's (Ukrainian).
    assert accepted.status_code == 200 and '<html lang="de"' in accepted.text and "Vielen Dank" in accepted.text
    await matching.wait_events(tenant, need.subject, count("staffed"), "the need staffed")

    reused = await matching.http.post(one, data={"choice": "decline"})
    assert reused.status_code == 409 and "bereits verwendet" in reused.text
    reopened = await matching.http.get(one, params={"choice": "decline"})
    assert reopened.status_code == 409 and "<form" not in reopened.text
    late_page = await matching.http.get(other, params={"choice": "accept"})
    assert late_page.status_code == 200 and "nicht mehr aktuell" in late_page.text and "<form" not in late_page.text
    late = await matching.http.post(other, data={"choice": "accept"})
    assert late.status_code == 200 and "nicht mehr aktuell" in late.text
    need_state = await matching.store.need(tenant, need.subject)
    assert need_state is not None and need_state["staffing"]["committed"] == [first.subject]
    other_proposal = await matching.store.proposal(tenant, str(proposals[1].data.proposal_id))
    assert other_proposal is not None and other_proposal["status"] == "withdrawn"
    await matching.wait_events(tenant, need.subject, count("withdrawn"), "the other proposal withdrawn")
    assert types(matching.reader.events(tenant, need.subject)).count("accepted") == 1


async def test_withdrawal_step_back_and_erasure_send_the_need_round_again(matching: Running) -> None:
    tenant = TENANTS["leave"]
    first, second = registered(tenant, km_north=0.2), registered(tenant, km_north=1.0)
    await matching.volunteers(tenant, first, second)
    need = opened(tenant)
    await matching.publish(need)
    await matching.wait_events(tenant, need.subject, count("proposed"), "the first proposal")

    withdrawn = registry_event(
        VolunteerWithdrawn,
        tenant,
        first.subject,
        2,
        {"volunteer_id": first.subject, "reason": "consent_withdrawn", "erasure_requested": True},
    )
    await matching.publish(withdrawn)
    events = await matching.wait_events(tenant, need.subject, count("proposed", 2), "the next proposal")
    assert types(events) == ["proposed", "withdrawn", "proposed"]
    assert events[1].data.reason == "volunteer_withdrawn"
    assert events[2].data.volunteer_id == second.data.volunteer_id

    headers = matching.token(tenant, second.subject)
    mine = (await matching.http.get("/volunteers/me/proposals", headers=headers)).json()
    assert [p["status"] for p in mine] == ["open"] and mine[0]["reasons"]
    assert mine[0]["category"] == "accompaniment_to_authorities" and mine[0]["need_id"] == need.subject
    accepted = await matching.http.post(f"/volunteers/me/proposals/{mine[0]['proposal_id']}/accept", headers=headers)
    assert accepted.status_code == 200 and accepted.json() == {"outcome": "accepted"}
    stepped = await matching.http.post(f"/volunteers/me/engagements/{need.subject}/step-back", headers=headers)
    assert stepped.status_code == 200, stepped.text
    events = await matching.wait_events(tenant, need.subject, count("unstaffed"), "unstaffed after stepping back")
    assert types(events)[3:] == ["accepted", "staffed", "stepped_back", "unstaffed"]
    assert events[-1].data.reason == "volunteer_stepped_back"

    # Matching's copy of the volunteer's key (as its keyring keeps it): the erasure alone, without
    # the key topic's tombstone, destroys it.
    keyring = matching.store.database["person_keys"]
    await keyring.insert_one({"_id": f"{tenant}:{first.subject}", "wrapped_key": "wrapped", "destroyed": False})
    erased = registry_event(
        VolunteerErased, tenant, first.subject, 3, {"volunteer_id": first.subject, "erased_at": "2026-11-25T10:00:00Z"}
    )
    await matching.publish(erased)

    async def erased_everywhere() -> bool:
        document = await matching.store.volunteer(tenant, first.subject)
        proposals = await matching.store.proposals_of_volunteer(tenant, first.subject)
        return bool(document and document.get("erased") and all(p["reasons"] == [] for p in proposals))

    await eventually(erased_everywhere, what="the volunteer's data erased")
    document = await matching.store.volunteer(tenant, first.subject)
    assert document is not None and "profile" not in document and "availability" not in document
    proposals = await matching.store.proposals_of_volunteer(tenant, first.subject)
    outbox = matching.store.database["outbox"]
    assert proposals and not await outbox.count_documents({"_id": {"$in": [p["event_id"] for p in proposals]}})
    key = await keyring.find_one({"_id": f"{tenant}:{first.subject}"})
    assert key is not None and key["destroyed"] and "wrapped_key" not in key


async def test_a_volunteer_lists_open_needs_that_fit_and_picks_one(matching: Running) -> None:
    tenant = TENANTS["pick"]
    proposed, picker = registered(tenant, km_north=0.2), registered(tenant, km_north=1.2)
    await matching.volunteers(tenant, proposed, picker)
    need = opened(tenant)
    await matching.publish(need)
    await matching.wait_events(tenant, need.subject, count("proposed"), "the first proposal")

    headers = matching.token(tenant, picker.subject)
    listed = (await matching.http.get("/volunteers/me/open-needs", headers=headers)).json()
    assert [item["need_id"] for item in listed] == [need.subject]
    assert "about 1.5 km away" in [reason["detail"] for reason in listed[0]["reasons"]]
    picked = await matching.http.post(f"/volunteers/me/open-needs/{need.subject}/pick", headers=headers)
    assert picked.status_code == 200 and picked.json() == {"outcome": "picked"}

    events = await matching.wait_events(tenant, need.subject, count("withdrawn"), "staffed by the pick")
    assert types(events) == ["proposed", "picked_need", "staffed", "withdrawn"]
    assert events[2].data.volunteer_ids == [picker.data.volunteer_id]
    assert (await matching.http.get("/volunteers/me/open-needs", headers=headers)).json() == []


async def test_partner_answers_are_applied_and_a_foreign_tenant_on_the_topic_is_dead_lettered(
    matching: Running,
) -> None:
    tenant = TENANTS["partner"]
    volunteer = registered(tenant)
    await matching.volunteers(tenant, volunteer)
    need = opened(tenant)
    await matching.publish(need)
    (proposal,) = await matching.wait_events(tenant, need.subject, count("proposed"), "the proposal")
    ids = {
        "proposal_id": str(proposal.data.proposal_id),
        "need_id": need.subject,
        "volunteer_id": volunteer.subject,
    }
    source = f"/partners/{tenant}/volunteer-portal"
    foreign = new_event(
        data=DeclineProposal(**ids), tenant=tenant, subject=ids["proposal_id"], version=1, source=source
    )
    await matching.publish(foreign, topic=partner_inbound_topic(TENANTS["other"]))
    accept = new_event(data=AcceptProposal(**ids), tenant=tenant, subject=ids["proposal_id"], version=2, source=source)
    await matching.publish(accept, topic=partner_inbound_topic(tenant))

    events = await matching.wait_events(tenant, need.subject, count("staffed"), "staffed by the partner answer")
    assert types(events) == ["proposed", "accepted", "staffed"]
    assert events[1].data.answered_via == "partner"
    (dead,) = await eventually(
        lambda: _value(matching.reader.dead_letters(PARTNER_DLQ, tenant)), what="the foreign answer dead-lettered"
    )
    assert DeadLetterInfo.from_headers(dead.headers.items()).reason == "tenant_mismatch"
    assert dead.value == to_bytes(foreign)


async def test_the_read_model_ignores_late_older_versions_and_dead_letters_unknown_volunteers(
    matching: Running,
) -> None:
    tenant = TENANTS["model"]
    volunteer = registered(tenant)
    await matching.volunteers(tenant, volunteer)
    newer = registry_event(
        VolunteerProfileUpdated, tenant, volunteer.subject, 3, volunteer_data(volunteer.subject, radius=50)
    )
    older = registry_event(
        VolunteerProfileUpdated, tenant, volunteer.subject, 2, volunteer_data(volunteer.subject, radius=1)
    )
    unknown_id = str(uuid.uuid4())
    unknown = registry_event(VolunteerProfileUpdated, tenant, unknown_id, 2, volunteer_data(unknown_id))
    unknown_need_id = str(uuid.uuid4())
    unknown_need = registry_event(
        NeedUpdated, tenant, unknown_need_id, 2, {"need_id": unknown_need_id, **need_details()}
    )
    for event in (newer, older, unknown, unknown_need):
        await matching.publish(event)

    async def both_dead() -> list[Seen] | None:
        found = matching.reader.dead_letters(WORK_DLQ, tenant)
        return found if len(found) >= 2 else None

    found = await eventually(both_dead, what="the unknown volunteer and need dead-lettered")
    dead_letters = {seen.event().id: seen for seen in found}
    assert set(dead_letters) == {unknown.id, unknown_need.id}
    dead, dead_need = dead_letters[unknown.id], dead_letters[unknown_need.id]
    info = DeadLetterInfo.from_headers(dead.headers.items())
    assert info.reason == "processing_failed" and "not known" in info.error and "after 3 attempts" in info.error
    assert dead.value == to_bytes(unknown) and dead.key == tenant.encode()

    async def newer_applied() -> dict[str, Any] | None:
        # Another key than the unknown volunteer's: maybe another partition, applied in its own time.
        found = await matching.store.volunteer(tenant, volunteer.subject)
        return found if found is not None and found["profile_version"] >= 3 else None

    document = await eventually(newer_applied, what="the newer profile applied")
    # The older version came after it on the same key, and changed nothing.
    assert document["profile_version"] == 3 and document["profile"]["travel_radius_km"] == 50
    assert "contact" not in document["profile"], "matching keeps no contact data"
    assert await matching.store.volunteer(tenant, unknown_id) is None
    assert dead_need.value == to_bytes(unknown_need)
    assert "not known" in DeadLetterInfo.from_headers(dead_need.headers.items()).error
    assert await matching.store.need(tenant, unknown_need_id) is None


async def test_a_changed_need_withdraws_proposals_that_no_longer_fit_and_asks_who_fits_now(matching: Running) -> None:
    tenant = TENANTS["change"]
    arabic, also_arabic = registered(tenant, km_north=0.2), registered(tenant, km_north=0.4)
    ukrainian = registered(tenant, km_north=2.0, languages=(("de", "b2"), ("uk", "native")))
    await matching.volunteers(tenant, arabic, also_arabic, ukrainian)
    need = opened(tenant)
    await matching.publish(need)
    await matching.wait_events(tenant, need.subject, count("proposed", 2), "two proposals")

    changed = registry_event(
        NeedUpdated, tenant, need.subject, 2, {"need_id": need.subject, **need_details(languages=(("uk", "b1"),))}
    )
    await matching.publish(changed)
    events = await matching.wait_events(tenant, need.subject, count("proposed", 3), "a proposal that fits the change")
    assert types(events) == ["proposed", "proposed", "withdrawn", "withdrawn", "proposed"]
    assert {e.data.reason for e in events[2:4]} == {"need_changed"}
    assert events[4].data.volunteer_id == ukrainian.data.volunteer_id
    assert "speaks Ukrainian (native speaker)" in [reason.detail for reason in events[4].data.reasons]


async def test_an_edited_need_never_goes_to_an_unchecked_volunteer_and_more_needed_asks_more(
    matching: Running,
) -> None:
    """The office edits a need (issue 16, item 3): a police certificate now required withdraws the
    proposal of whoever's certificate the office has not checked and asks no unchecked person;
    more volunteers needed asks more people."""
    tenant = TENANTS["edit"]
    near, checked, far, farther = (registered(tenant, km_north=km) for km in (0.2, 0.4, 2.0, 3.0))
    await matching.volunteers(tenant, near, checked, far, farther)
    police = {"kind": "extended_police_certificate", "seen_on": "2026-11-20", "valid_until": "2031-11-19"}
    volunteer_id = checked.data.volunteer_id
    data = {"volunteer_id": volunteer_id, "check": police, "checks": [police]}
    await matching.publish(registry_event(VolunteerCertificateChecked, tenant, checked.subject, 2, data))

    async def check_known() -> bool:
        document = await matching.store.volunteer(tenant, checked.subject)
        return document is not None and document.get("checks_version") == 2

    await eventually(check_known, what="the office's check known to matching")
    need = opened(tenant)
    await matching.publish(need)
    events = await matching.wait_events(tenant, need.subject, count("proposed", 2), "two proposals")
    assert {e.data.volunteer_id for e in events} == {near.data.volunteer_id, volunteer_id}

    police_needed = {"need_id": need.subject, **need_details(needed=2), "certificate_required": police["kind"]}
    await matching.publish(registry_event(NeedUpdated, tenant, need.subject, 2, police_needed))
    events = await matching.wait_events(tenant, need.subject, count("withdrawn"), "the unchecked one withdrawn")
    assert types(events) == ["proposed", "proposed", "withdrawn"], "nobody unchecked is asked instead"
    assert events[2].data.volunteer_id == near.data.volunteer_id and events[2].data.reason == "need_changed"

    three_needed = {"need_id": need.subject, **need_details(needed=3)}
    await matching.publish(registry_event(NeedUpdated, tenant, need.subject, 3, three_needed))
    events = await matching.wait_events(tenant, need.subject, count("proposed", 4), "more people asked")
    assert {e.data.volunteer_id for e in events[3:]} == {far.data.volunteer_id, farther.data.volunteer_id}
    (kept,) = (e.data.proposal_id for e in events[:2] if e.data.volunteer_id == volunteer_id)
    stored = await matching.store.proposal(tenant, str(kept))
    assert stored is not None and stored["status"] == "open", "the checked volunteer's proposal stayed"


async def test_the_volunteer_api_needs_a_volunteer_token_and_hides_other_peoples_proposals(
    matching: Running,
) -> None:
    tenant = TENANTS["auth"]
    volunteer, stranger = registered(tenant), registered(tenant, km_north=30, radius=1)
    await matching.volunteers(tenant, volunteer, stranger)
    need = opened(tenant)
    await matching.publish(need)
    (proposal,) = await matching.wait_events(tenant, need.subject, count("proposed"), "the proposal")

    ready = await matching.http.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {
        "mongodb": "ok",
        "kafka": "ok",
        "person_keys": "ok",
        "work_partitions": "ok",
    }
    missing = await matching.http.get("/volunteers/me/proposals")
    assert missing.status_code == 401 and missing.headers["content-type"] == "application/problem+json"
    wrong_role = await matching.http.get(
        "/volunteers/me/proposals", headers=matching.token(tenant, volunteer.subject, Role.COORDINATOR)
    )
    assert wrong_role.status_code == 403
    path = f"/volunteers/me/proposals/{proposal.data.proposal_id}/accept"
    foreign = await matching.http.post(path, headers=matching.token(tenant, stranger.subject))
    assert foreign.status_code == 404
    other_tenant = await matching.http.post(path, headers=matching.token(TENANTS["other"], volunteer.subject))
    assert other_tenant.status_code == 404
    invalid = await matching.http.post(
        "/volunteers/me/proposals/not-a-uuid/accept", headers=matching.token(tenant, volunteer.subject)
    )
    assert invalid.status_code == 422 and "proposal_id" in invalid.text
    still_open = await matching.store.proposal(tenant, str(proposal.data.proposal_id))
    assert still_open is not None and still_open["status"] == "open"


async def _value(items: list[Any]) -> list[Any]:
    return items


async def test_a_need_starting_soon_without_enough_volunteers_is_escalated_once_and_can_still_be_staffed(
    matching: Running,
) -> None:
    tenant = TENANTS["soon"]
    volunteer = registered(tenant)
    await matching.volunteers(tenant, volunteer)
    # Inside the 24-hour lead at any time of day ("tomorrow at 10" is not between midnight and 10 in Berlin)
    # and inside the volunteer's hours (8 to 20): the next two-hour slot starting at 9, 11, ... 17.
    now = datetime.now(BERLIN)
    soon = min(
        start
        for day in (now, now + timedelta(days=1))
        for hour in (9, 11, 13, 15, 17)
        if (start := day.replace(hour=hour, minute=0, second=0, microsecond=0)) > now + timedelta(minutes=10)
    )
    window = {"kind": "one_off", "start": soon.isoformat(), "end": (soon + timedelta(hours=2)).isoformat()}
    need = opened(tenant, schedule=window)
    await matching.publish(need)

    events = await matching.wait_events(tenant, need.subject, count("unstaffed"), "the escalation")
    assert types(events) == ["proposed", "unstaffed"]
    assert events[1].data.reason == "start_approaching"
    headers = matching.token(tenant, volunteer.subject)
    accepted = await matching.http.post(
        f"/volunteers/me/proposals/{events[0].data.proposal_id}/accept", headers=headers
    )
    assert accepted.status_code == 200
    events = await matching.wait_events(tenant, need.subject, count("staffed"), "staffed after the escalation")
    assert types(events) == ["proposed", "unstaffed", "accepted", "staffed"]


async def test_a_restarted_service_rebuilds_the_same_index_from_its_database(matching: Running) -> None:
    tenant = TENANTS["restart"]
    helper, other = registered(tenant, km_north=0.2), registered(tenant, km_north=0.5)
    await matching.volunteers(tenant, helper, other)
    need, second_need = opened(tenant, needed=2), opened(tenant, languages=(("ti", "b1"),))
    await matching.publish(need)
    await matching.publish(second_need)
    proposals = await matching.wait_events(tenant, need.subject, count("proposed", 2), "two proposals")
    accepted = await matching.http.post(
        f"/volunteers/me/proposals/{proposals[0].data.proposal_id}/accept",
        headers=matching.token(tenant, helper.subject),
    )
    assert accepted.status_code == 200
    await matching.wait_events(tenant, second_need.subject, count("unstaffed"), "the second need unstaffed")

    running: Matching = matching.app.state.matching
    rebuilt = Matching(matching.settings, running.client, running.store, person_keys=running.person_keys)
    await rebuilt.load()
    for name in TENANTS.values():
        before, after = running.index(name), rebuilt.index(name)
        assert sorted(after.volunteers) == sorted(before.volunteers), name
        assert sorted(after.open_needs) == sorted(before.open_needs), name
        assert after.engagements == before.engagements, name
        assert after.timezone == before.timezone, name
    index = rebuilt.index(tenant)
    assert sorted(index.volunteers) == sorted([helper.subject, other.subject])
    assert sorted(index.open_needs) == sorted([need.subject, second_need.subject])
    assert [e.need_id for e in index.engagements[helper.subject]] == [need.subject]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/answers/a.%C3%A4?choice=accept"),
        ("POST", "/answers/abc.d%C3%A9f"),
        ("GET", "/answers/%C3%A4.x?choice=decline"),
        # Cut short or changed by hand: a page for the person, not a 422 problem document.
        ("GET", "/answers/abc.def"),
        ("GET", "/answers/abc.def?choice=maybe"),
        ("POST", "/answers/abc.def?choice=none"),
    ],
)
async def test_a_link_with_non_ascii_characters_is_the_invalid_link_page_not_an_error(
    matching: Running, method: str, path: str
) -> None:
    # hmac.compare_digest raised TypeError on a non-ASCII signature: a 500 instead of this page.
    form = {"choice": "accept"} if method == "POST" and "choice=none" not in path else None
    page = await matching.http.request(method, path, data=form)
    assert page.status_code == 400 and "ungültig" in page.text
    assert page.headers["content-type"].startswith("text/html")


async def test_answer_pages_are_not_stored_not_framed_send_no_referrer_and_are_not_sniffed(matching: Running) -> None:
    tenant = TENANTS["links"]
    volunteer = registered(tenant, km_north=0.4)
    await matching.volunteers(tenant, volunteer)
    need = opened(tenant)
    await matching.publish(need)
    (proposal, *_) = await matching.wait_events(tenant, need.subject, count("proposed"), "a proposal")
    path = answer_path(matching.settings, proposal)
    pages = [
        await matching.http.get(path, params={"choice": "decline"}),  # the confirmation page
        await matching.http.get(path[:-3] + "xyz", params={"choice": "decline"}),  # the invalid link page
        await matching.http.post(path, data={"choice": "decline"}),  # the outcome page
    ]
    assert [page.status_code for page in pages] == [200, 400, 200]
    for page in pages:
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["x-content-type-options"] == "nosniff"
        policy = page.headers["content-security-policy"]
        for directive in ("default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"):
            assert directive in policy
    api = await matching.http.get("/volunteers/me/proposals", headers=matching.token(tenant, volunteer.subject))
    assert api.status_code == 200 and api.headers["x-content-type-options"] == "nosniff"
