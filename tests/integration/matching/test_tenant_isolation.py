"""Tenant isolation of the matching service on the real broker and database.

Two municipalities side by side with near-identical data: the same skills, languages and place,
and one person registered in both (the same volunteer id, as when one login registers in two
municipalities). Nothing of one may be proposed, shown, answered or changed through the other:
not by matching itself, not through the volunteer API or the office's console with any role (their
logged hours and the office's confirmation of them included), not through an answer link, not
through the other's partner topic.

One service and one world for the module; the last test accepts a proposal, so it runs last.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import pytest
import pytest_asyncio

from lotse_contracts import (
    AcceptProposal,
    DeadLetterInfo,
    Envelope,
    dead_letter_topic,
    new_event,
    partner_inbound_topic,
    to_bytes,
    topics_for_tenants,
)
from lotse_contracts.dead_letter import DeadLetterReason
from lotse_devstack import Stack, ensure_topics
from lotse_matching.store import HoursEntry, HoursState
from lotse_runtime import answer_links
from lotse_runtime.auth import Role
from tests.integration.matching.support import (
    ORGANISATION,
    RunningMatching,
    answer_path,
    opened,
    registered,
    service_settings,
    serving,
    tenant_event,
)
from tests.support import tokens
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

RUN = uuid.uuid4().hex[:8]
OURS, THEIRS = f"m{RUN}-ours", f"m{RUN}-theirs"
PROPOSALS = "lotse.matching.proposals.v1"
THEIR_PARTNER_DLQ = dead_letter_topic(partner_inbound_topic(THEIRS))
NO_ARABIC = (("de", "native"),)


@dataclass
class World:
    """`ours` is the victim, `theirs` the other municipality. The shared person fits only
    their need (in our municipality they speak no Arabic), so proposing them for our need would
    mean their profile leaked into our matching."""

    matching: RunningMatching
    our_volunteers: tuple[str, str]
    their_volunteer: str
    shared: str
    our_need: str
    their_need: str
    our_marker: str
    their_marker: str
    our_proposals: dict[str, Envelope[Any]]  # volunteer id -> MatchProposed
    their_proposals: dict[str, Envelope[Any]]

    def headers(self, *roles: Role, tenant: str | None, subject: str) -> dict[str, str]:
        # An initiative admin's token always names its organisation (a token without one is refused).
        organisation = f"{tenant}-initiative" if Role.INITIATIVE_ADMIN in roles else None
        token = tokens.issue(subject, roles, tenant=tenant, organisation=organisation)
        return {"Authorization": f"Bearer {token}"}

    def proposed(self, need_id: str) -> list[Envelope[Any]]:
        """Every proposal for the need on the topic, whatever its key or envelope says."""
        events = [seen.event() for seen in list(self.matching.reader.seen) if seen.topic == PROPOSALS]
        return [e for e in events if e.type.endswith(".proposed.v1") and str(e.data.need_id) == need_id]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(stack: Stack) -> AsyncIterator[World]:
    await ensure_topics(stack.kafka_bootstrap, topics_for_tenants([OURS, THEIRS]))
    settings = service_settings(stack, f"isolation-{RUN}", unknown_retry_attempts=2)
    async with serving(RunningMatching, stack, settings, [PROPOSALS, THEIR_PARTNER_DLQ], f"m{RUN}") as matching:
        shared = str(uuid.uuid4())
        # Their volunteers live closer to the need than ours: a leak would rank them first.
        ours = [registered(OURS, km_north=km) for km in (0.6, 1.2)]
        ours.append(registered(OURS, shared, km_north=0.1, languages=NO_ARABIC))
        theirs = [registered(THEIRS, km_north=0.05), registered(THEIRS, shared, km_north=0.1)]
        await matching.publish(tenant_event(OURS), tenant_event(THEIRS), *ours, *theirs)
        for event in (*ours, *theirs):
            await eventually(
                partial(matching.store.volunteer, event.tenant, event.subject), timeout=60, what="volunteer known"
            )
        our_marker, their_marker = f"Begleitung {uuid.uuid4().hex}", f"Begleitung {uuid.uuid4().hex}"
        our_need, their_need = opened(OURS, description=our_marker), opened(THEIRS, description=their_marker)
        running = World(
            matching,
            our_volunteers=(ours[0].subject, ours[1].subject),
            their_volunteer=theirs[0].subject,
            shared=shared,
            our_need=our_need.subject,
            their_need=their_need.subject,
            our_marker=our_marker,
            their_marker=their_marker,
            our_proposals={},
            their_proposals={},
        )
        await matching.publish(our_need, their_need)
        # A round's proposals are written in one transaction: two of each means the round is out.
        for need_id, found in (
            (our_need.subject, running.our_proposals),
            (their_need.subject, running.their_proposals),
        ):

            async def first_round(need: str = need_id) -> list[Any]:
                return await _at_least(running.proposed(need), 2)

            events = await eventually(first_round, what="the first round of proposals")
            found.update({str(e.data.volunteer_id): e for e in events})
        yield running


async def _at_least(items: list[Any], count: int) -> list[Any]:
    return items if len(items) >= count else []


async def test_only_our_volunteers_are_proposed_for_our_need_and_only_theirs_for_theirs(world: World) -> None:
    ours, theirs = world.proposed(world.our_need), world.proposed(world.their_need)
    assert {str(e.data.volunteer_id) for e in ours} == set(world.our_volunteers)
    assert {str(e.data.volunteer_id) for e in theirs} == {world.their_volunteer, world.shared}
    assert {e.tenant for e in ours} == {OURS} and {e.tenant for e in theirs} == {THEIRS}
    assert all(e.key.startswith(f"{OURS}:".encode()) for e in ours)
    # Reasons are computed from the tenant's own profile: 0.6 and 1.2 km (1 and 1.5 km rough), not their 0.05 km.
    assert sorted(e.data.distance_km for e in ours) == [1.0, 1.5]

    # The database agrees, read without any tenant filter.
    stored = await world.matching.store.proposals.find({"need_id": world.our_need}).to_list()
    assert {(p["tenant"], p["volunteer_id"]) for p in stored} == {(OURS, v) for v in world.our_volunteers}


async def test_tokens_of_the_other_municipality_see_and_change_nothing_of_ours(world: World) -> None:
    our_volunteer = world.our_volunteers[0]
    our_proposal = str(world.our_proposals[our_volunteer].data.proposal_id)
    intruders = {
        "their volunteer": world.headers(Role.VOLUNTEER, tenant=THEIRS, subject=world.their_volunteer),
        "their token with our volunteer's id": world.headers(Role.VOLUNTEER, tenant=THEIRS, subject=our_volunteer),
        "the shared person as theirs": world.headers(Role.VOLUNTEER, tenant=THEIRS, subject=world.shared),
        "their coordinator": world.headers(Role.COORDINATOR, tenant=THEIRS, subject=our_volunteer),
        "their initiative admin": world.headers(Role.INITIATIVE_ADMIN, tenant=THEIRS, subject=our_volunteer),
        "their partner": world.headers(Role.PARTNER, tenant=THEIRS, subject=our_volunteer),
        "every tenant role of theirs": world.headers(
            *(role for role in Role if role != Role.PLATFORM_ADMIN), tenant=THEIRS, subject=our_volunteer
        ),
        "a platform admin": world.headers(Role.PLATFORM_ADMIN, tenant=None, subject=our_volunteer),
        "a platform admin as volunteer without a tenant": world.headers(
            Role.PLATFORM_ADMIN, Role.VOLUNTEER, tenant=None, subject=our_volunteer
        ),
    }
    endpoints: list[tuple[str, str, Any]] = [
        ("GET", "/volunteers/me/proposals", None),
        ("POST", f"/volunteers/me/proposals/{our_proposal}/accept", None),
        ("POST", f"/volunteers/me/proposals/{our_proposal}/decline", {"reason": "too_far"}),
        ("POST", f"/volunteers/me/engagements/{world.our_need}/step-back", None),
        ("GET", "/volunteers/me/open-needs", None),
        ("POST", f"/volunteers/me/open-needs/{world.our_need}/pick", None),
    ]
    secrets = [
        OURS,
        world.our_need,
        world.our_marker,
        *world.our_volunteers,
        *(str(e.data.proposal_id) for e in world.our_proposals.values()),
    ]
    outbox = world.matching.store.database["outbox"]
    outbox_before = await outbox.count_documents({"tenant": OURS})

    for name, headers in intruders.items():
        for method, url, body in endpoints:
            response = await world.matching.http.request(method, url, json=body, headers=headers)
            # Lists answer with the caller's own data; everything aimed at ours is refused.
            allowed = {200, 403} if method == "GET" else {403, 404}
            assert response.status_code in allowed, (name, method, url, response.status_code, response.text)
            for secret in secrets:
                assert secret not in response.text.replace(url, ""), (name, method, url, secret)

    # Their shared person does see their own need, so the lists above were not empty by accident.
    theirs = await world.matching.http.get(
        "/volunteers/me/open-needs", headers=world.headers(Role.VOLUNTEER, tenant=THEIRS, subject=world.shared)
    )
    assert [item["need_id"] for item in theirs.json()] == [world.their_need]
    assert theirs.json()[0]["description"] == world.their_marker
    # In our municipality the same person fits nothing (no Arabic there), even though theirs fits.
    ours = await world.matching.http.get(
        "/volunteers/me/open-needs", headers=world.headers(Role.VOLUNTEER, tenant=OURS, subject=world.shared)
    )
    assert ours.status_code == 200 and ours.json() == []

    for proposal in world.our_proposals.values():
        stored = await world.matching.store.proposal(OURS, str(proposal.data.proposal_id))
        assert stored is not None and stored["status"] == "open"
    need = await world.matching.store.need(OURS, world.our_need)
    assert need is not None and need["staffing"]["committed"] == [] and need["staffing"]["state"] == "open"
    assert await outbox.count_documents({"tenant": OURS}) == outbox_before


async def test_the_office_console_of_our_municipality_is_ours_alone(world: World) -> None:
    """Every route of the coordination office's console, aimed at our need, proposal and
    volunteer: another municipality's callers get 404, platform admins, volunteers and partners
    403, an initiative admin of another organisation finds neither the need nor its people."""
    our_volunteer = world.our_volunteers[0]
    our_proposal = str(world.our_proposals[our_volunteer].data.proposal_id)
    need = f"/tenants/{OURS}/needs/{world.our_need}"
    routes: list[tuple[str, str, Any]] = [
        ("GET", f"/tenants/{OURS}/dashboard", None),
        ("GET", f"{need}/staffing", None),
        ("GET", f"{need}/candidates/{world.shared}", None),
        ("POST", f"{need}/proposals", {"volunteer_id": world.shared}),
        ("POST", f"{need}/proposals/{our_proposal}/answer", {"choice": "accept"}),
        ("POST", f"{need}/committed/{our_volunteer}/release", None),
        ("POST", f"{need}/rounds", None),
        ("GET", f"/tenants/{OURS}/volunteers/{our_volunteer}/staffing", None),
    ]
    their = partial(world.headers, tenant=THEIRS, subject=our_volunteer)
    ours = partial(world.headers, tenant=OURS, subject=our_volunteer)
    refused: dict[str, tuple[dict[str, str], set[int]]] = {
        "their coordinator": (their(Role.COORDINATOR), {404}),
        "their initiative admin": (their(Role.INITIATIVE_ADMIN), {404}),
        "their volunteer": (their(Role.VOLUNTEER), {404}),
        "their partner": (their(Role.PARTNER), {404}),
        "every tenant role of theirs": (their(*(r for r in Role if r != Role.PLATFORM_ADMIN)), {404}),
        "a platform admin": (world.headers(Role.PLATFORM_ADMIN, tenant=None, subject=our_volunteer), {403}),
        "our volunteer": (ours(Role.VOLUNTEER), {403}),
        "our partner": (ours(Role.PARTNER), {403}),
        # Another organisation of ours: the dashboard answers, with nothing of this need in it.
        "our other initiative's admin": (ours(Role.INITIATIVE_ADMIN), {404}),
        "nobody": ({}, {401}),
    }
    secrets = [
        world.our_marker,
        *world.our_volunteers,
        *(str(e.data.proposal_id) for e in world.our_proposals.values()),
    ]
    outbox = world.matching.store.database["outbox"]
    outbox_before = await outbox.count_documents({"tenant": OURS})

    for name, (headers, expected) in refused.items():
        for method, url, body in routes:
            response = await world.matching.http.request(method, url, json=body, headers=headers)
            allowed = {200} if name == "our other initiative's admin" and url.endswith("/dashboard") else expected
            assert response.status_code in allowed, (name, method, url, response.status_code, response.text)
            for secret in secrets:
                assert secret in url or secret not in response.text, (name, method, url, secret)
            if response.status_code == 200:
                assert all(items == [] for key, items in response.json().items() if key != "generated_at"), name

    # Their own console does not reach our need, proposal or people through their tenant's path.
    their_need = f"/tenants/{THEIRS}/needs/{world.their_need}"
    reaching: list[tuple[str, str, Any]] = [
        ("GET", f"/tenants/{THEIRS}/needs/{world.our_need}/staffing", None),
        ("POST", f"/tenants/{THEIRS}/needs/{world.our_need}/rounds", None),
        ("GET", f"{their_need}/candidates/{our_volunteer}", None),
        ("POST", f"{their_need}/proposals", {"volunteer_id": our_volunteer}),
        ("POST", f"{their_need}/proposals/{our_proposal}/answer", {"choice": "accept"}),
        ("POST", f"{their_need}/committed/{our_volunteer}/release", None),
        ("GET", f"/tenants/{THEIRS}/volunteers/{our_volunteer}/staffing", None),
    ]
    their_coordinator = world.headers(Role.COORDINATOR, tenant=THEIRS, subject=world.their_volunteer)
    for method, url, body in reaching:
        response = await world.matching.http.request(method, url, json=body, headers=their_coordinator)
        assert response.status_code == 404, (method, url, response.status_code, response.text)
        assert world.our_marker not in response.text
    board = await world.matching.http.get(f"/tenants/{THEIRS}/dashboard", headers=their_coordinator)
    assert world.our_need not in board.text and world.our_marker not in board.text

    # Our own coordinator and the need's initiative see it, so the refusals above were no accident.
    our_coordinator = ours(Role.COORDINATOR)
    staffing = await world.matching.http.get(f"{need}/staffing", headers=our_coordinator)
    assert staffing.status_code == 200 and staffing.json()["need"]["description"] == world.our_marker
    assert {p["volunteer_id"] for p in staffing.json()["proposals"]} == set(world.our_volunteers)
    owner_token = tokens.issue(our_volunteer, [Role.INITIATIVE_ADMIN], tenant=OURS, organisation=ORGANISATION)
    owner = {"Authorization": f"Bearer {owner_token}"}
    assert (await world.matching.http.get(f"{need}/staffing", headers=owner)).status_code == 200
    history = await world.matching.http.get(f"/tenants/{OURS}/volunteers/{our_volunteer}/staffing", headers=owner)
    assert history.status_code == 200 and [p["need_id"] for p in history.json()["proposals"]] == [world.our_need]
    board = (await world.matching.http.get(f"/tenants/{OURS}/dashboard", headers=our_coordinator)).json()
    assert world.our_need in {n["need_id"] for n in board["waiting_for_answers"]}

    for proposal in world.our_proposals.values():
        stored = await world.matching.store.proposal(OURS, str(proposal.data.proposal_id))
        assert stored is not None and stored["status"] == "open"
    stored_need = await world.matching.store.need(OURS, world.our_need)
    assert stored_need is not None and stored_need["staffing"]["committed"] == []
    assert await outbox.count_documents({"tenant": OURS}) == outbox_before
    assert await world.matching.store.database["office_requests"].count_documents({}) == 0


async def test_our_volunteers_hours_are_ours_alone(world: World) -> None:
    """Every route of logged hours, aimed at an entry of ours: the other municipality's volunteers
    find none of it (their own lists are empty), their office gets 404, a platform admin 403, and
    nobody of ours but the office and the need's initiative may decide on it."""
    our_volunteer = world.our_volunteers[0]
    now = datetime.now(UTC).replace(microsecond=0)  # as MongoDB keeps it (milliseconds)
    entry = HoursEntry(
        id=str(uuid.uuid4()),
        tenant=OURS,
        volunteer_id=our_volunteer,
        need_id=world.our_need,
        organisation_id=ORGANISATION,
        category="accompaniment_to_authorities",
        day=date(2026, 12, 1),
        minutes=120,
        note=world.our_marker,
        state=HoursState.PENDING,
        logged_at=now,
        updated_at=now,
    )
    await world.matching.store.put_hours(entry, None)
    body = {"need_id": world.our_need, "date": "2026-12-01", "minutes": 60}
    mine: list[tuple[str, str, Any]] = [
        ("GET", "/volunteers/me/hours", None),
        ("GET", "/volunteers/me/needs-for-hours", None),
        ("GET", "/volunteers/me/hours-summary", None),
        ("POST", "/volunteers/me/hours", {**body, "entry_id": entry.id}),
        ("PUT", f"/volunteers/me/hours/{entry.id}", body),
        ("DELETE", f"/volunteers/me/hours/{entry.id}", None),
    ]
    their = partial(world.headers, tenant=THEIRS, subject=our_volunteer)
    intruders = {
        "their token with our volunteer's id": their(Role.VOLUNTEER),
        "the shared person as theirs": world.headers(Role.VOLUNTEER, tenant=THEIRS, subject=world.shared),
        "every tenant role of theirs": their(*(r for r in Role if r != Role.PLATFORM_ADMIN)),
        "a platform admin as volunteer without a tenant": world.headers(
            Role.PLATFORM_ADMIN, Role.VOLUNTEER, tenant=None, subject=our_volunteer
        ),
    }
    for name, headers in intruders.items():
        for method, url, request in mine:
            response = await world.matching.http.request(method, url, json=request, headers=headers)
            # Lists answer with the caller's own (none); everything aimed at ours is refused.
            allowed = {200, 403} if method == "GET" else {403, 404, 422}
            assert response.status_code in allowed, (name, method, url, response.status_code, response.text)
            assert world.our_marker not in response.text and entry.id not in response.text.replace(url, ""), name
            if response.status_code == 200:
                assert response.json() in ([], {"years": []}), (name, url, response.text)

    office: list[tuple[str, str, Any]] = [
        ("GET", f"/tenants/{OURS}/hours", None),
        ("POST", f"/tenants/{OURS}/hours/{entry.id}/confirm", None),
        ("POST", f"/tenants/{OURS}/hours/{entry.id}/reject", {"reason": "nein"}),
    ]
    ours = partial(world.headers, tenant=OURS, subject=our_volunteer)
    refused: dict[str, tuple[dict[str, str], set[int]]] = {
        "their coordinator": (their(Role.COORDINATOR), {404}),
        "their initiative admin": (their(Role.INITIATIVE_ADMIN), {404}),
        "every tenant role of theirs": (their(*(r for r in Role if r != Role.PLATFORM_ADMIN)), {404}),
        "a platform admin": (world.headers(Role.PLATFORM_ADMIN, tenant=None, subject=our_volunteer), {403}),
        "our volunteer": (ours(Role.VOLUNTEER), {403}),
        "our partner": (ours(Role.PARTNER), {403}),
        # Another organisation of ours: its list answers, without our entry.
        "our other initiative's admin": (ours(Role.INITIATIVE_ADMIN), {404}),
        "nobody": ({}, {401}),
    }
    for name, (headers, expected) in refused.items():
        for method, url, request in office:
            response = await world.matching.http.request(method, url, json=request, headers=headers)
            allowed = {200} if name == "our other initiative's admin" and method == "GET" else expected
            assert response.status_code in allowed, (name, method, url, response.status_code, response.text)
            assert world.our_marker not in response.text and entry.id not in response.text.replace(url, ""), name
    their_coordinator = world.headers(Role.COORDINATOR, tenant=THEIRS, subject=world.their_volunteer)
    for action in ("confirm", "reject"):
        crossing = await world.matching.http.post(
            f"/tenants/{THEIRS}/hours/{entry.id}/{action}", json={"reason": "nein"}, headers=their_coordinator
        )
        assert crossing.status_code == 404, crossing.text
    assert (await world.matching.http.get(f"/tenants/{THEIRS}/hours", headers=their_coordinator)).json()["items"] == []

    assert await world.matching.store.hours_entry(OURS, entry.id) == entry
    # Our office sees it, so the refusals above were no accident.
    listed = await world.matching.http.get(f"/tenants/{OURS}/hours", headers=ours(Role.COORDINATOR))
    assert [item["entry_id"] for item in listed.json()["items"]] == [entry.id]
    await world.matching.store.delete_hours(OURS, entry.id, None)


async def test_partner_answers_on_their_topic_cannot_reach_our_proposals(world: World) -> None:
    our_volunteer = world.our_volunteers[1]
    proposal = world.our_proposals[our_volunteer]
    ids = {"proposal_id": str(proposal.data.proposal_id), "need_id": world.our_need, "volunteer_id": our_volunteer}
    answer = AcceptProposal(**ids)
    # Our tenant in the envelope (and its source), on their topic: the topic's credentials are theirs.
    posing = new_event(
        data=answer, tenant=OURS, subject=ids["proposal_id"], version=1, source=f"/partners/{OURS}/portal"
    )
    # Their own tenant, naming our proposal: it does not exist in their municipality.
    reaching = new_event(
        data=answer, tenant=THEIRS, subject=ids["proposal_id"], version=1, source=f"/partners/{THEIRS}/portal"
    )
    for event in (posing, reaching):
        await world.matching.publish(event, topic=partner_inbound_topic(THEIRS))

    async def both_dead_lettered() -> dict[bytes, DeadLetterReason]:
        dead = [s for s in list(world.matching.reader.seen) if s.topic == THEIR_PARTNER_DLQ]
        found = {s.value: DeadLetterInfo.from_headers(s.headers.items()).reason for s in dead}
        return found if {to_bytes(posing), to_bytes(reaching)} <= set(found) else {}

    reasons = await eventually(both_dead_lettered, what="both answers dead-lettered")
    assert reasons[to_bytes(posing)] == "tenant_mismatch"
    assert reasons[to_bytes(reaching)] == "not_allowed"
    stored = await world.matching.store.proposal(OURS, ids["proposal_id"])
    assert stored is not None and stored["status"] == "open"
    assert not [e for e in world.matching.reader.events(OURS, world.our_need) if e.type.endswith(".accepted.v1")]


async def test_an_answer_link_acts_only_on_its_own_proposal_in_its_own_municipality(world: World) -> None:
    """Runs last: it accepts our proposal at the end."""
    our_volunteer = world.our_volunteers[0]
    ours = world.our_proposals[our_volunteer]
    their_proposal = str(world.their_proposals[world.shared].data.proposal_id)
    our_link = answer_path(world.matching.settings, ours)
    token = our_link.removeprefix("/answers/")
    body, _, signature = token.partition(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))

    # Our link's signature over a payload pointing elsewhere (their proposal, or their tenant).
    for changed in ({"p": their_proposal}, {"t": THEIRS}, {"p": their_proposal, "t": THEIRS}):
        forged_body = base64.urlsafe_b64encode(json.dumps({**claims, **changed}).encode()).rstrip(b"=").decode()
        forged = f"/answers/{forged_body}.{signature}"
        assert (await world.matching.http.get(forged, params={"choice": "accept"})).status_code == 400
        assert (await world.matching.http.post(forged, data={"choice": "accept"})).status_code == 400

    # Even a validly signed link only looks in the municipality it names.
    expires = datetime.now(UTC) + timedelta(hours=1)
    secret = answer_links.secret_value(world.matching.settings.answer_link_secret)
    crossed = [
        answer_links.sign(secret, str(ours.data.proposal_id), THEIRS, expires),
        answer_links.sign(secret, their_proposal, OURS, expires),
    ]
    for crossed_token in crossed:
        page = await world.matching.http.get(f"/answers/{crossed_token}", params={"choice": "accept"})
        assert page.status_code == 404 and world.our_marker not in page.text and world.their_marker not in page.text
        answered = await world.matching.http.post(f"/answers/{crossed_token}", data={"choice": "accept"})
        assert answered.status_code == 404

    # Our genuine link shows our need only, and accepting it changes our need and nothing of theirs.
    page = await world.matching.http.get(our_link, params={"choice": "accept"})
    assert page.status_code == 200 and world.our_marker in page.text and world.their_marker not in page.text
    accepted = await world.matching.http.post(our_link, data={"choice": "accept"})
    assert accepted.status_code == 200

    async def staffed() -> list[Envelope[Any]]:
        return [e for e in world.matching.reader.events(OURS, world.our_need) if e.type.endswith(".staffed.v1")]

    (done,) = await eventually(staffed, what="our need staffed")
    assert [str(v) for v in done.data.volunteer_ids] == [our_volunteer]
    for proposal in world.their_proposals.values():
        stored = await world.matching.store.proposal(THEIRS, str(proposal.data.proposal_id))
        assert stored is not None and stored["status"] == "open"
    their_need = await world.matching.store.need(THEIRS, world.their_need)
    assert their_need is not None and their_need["staffing"]["committed"] == []
    assert not [e for e in world.matching.reader.events(THEIRS) if not e.type.endswith(".proposed.v1")]
