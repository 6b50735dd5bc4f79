"""A volunteer's engagements and their calendar feed, on the real matching service, broker and
database: accepted proposals and picks are engagements until the volunteer steps back; the feed's
secret URL serves them as iCalendar, is replaced by a new one, revoked, invisible to other
volunteers and gone with the volunteer's erasure. Each feed has its own allowance, also when the
portal fetches all of them from one address, and the portal passes a feed's 429 on.

One service runs for the module; every test has its own tenant.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from icalendar import Calendar
from pymongo import AsyncMongoClient

from lotse_contracts import Envelope, NeedOpened, VolunteerErased, topics_for_tenants
from lotse_devstack import Stack, ensure_topics
from lotse_matching.app import create_app
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import Store
from lotse_portal.app import create_app as create_portal
from lotse_portal.settings import PortalSettings
from lotse_runtime.auth import Role
from lotse_runtime.http_guards import PublicRateLimit
from tests.integration.matching.support import (
    need_details,
    registered,
    registry_event,
    service_settings,
    work_topics,
)
from tests.support import events, tokens
from tests.support.running import RunningService, serving
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

PREFIX = f"c{uuid.uuid4().hex[:8]}"
TENANTS = {name: f"{PREFIX}-{name}" for name in ("engaged", "feed", "erase", "limits")}
ZONES = {
    TENANTS["engaged"]: "Europe/Berlin",
    TENANTS["feed"]: "Europe/London",
    TENANTS["erase"]: "Europe/Berlin",
    TENANTS["limits"]: "Europe/Berlin",
}
# Requests per feed (matching) and per client address (the portal's own limit of the route).
FEED_LIMIT = "3 per 1 minute"
PLACE = {"point": {"lat": 52.52, "lon": 13.405}, "postcode": "10178", "district": "Mitte"}


class Running(RunningService[MatchingSettings]):
    @property
    def store(self) -> Store:
        store: Store = self.app.state.matching.store
        return store


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def matching(stack: Stack) -> AsyncIterator[Running]:
    await ensure_topics(stack.kafka_bootstrap, topics_for_tenants(TENANTS.values()))
    # One proposal at a time, so that the nearest volunteer gets it and the other can pick.
    policies = {tenant: {"proposals_per_round": 1} for tenant in TENANTS.values()}
    settings = service_settings(
        stack, f"cal-{uuid.uuid4().hex[:8]}", tenant_policies=policies, public_rate_limit=FEED_LIMIT
    )
    async with serving(
        Running, stack, create_app(settings), settings, PREFIX, own_topics=work_topics(settings)
    ) as running:
        for tenant in TENANTS.values():
            onboarded = events.tenant_onboarded(
                tenant, default_language="de", supported_languages=["de"], timezone=ZONES[tenant]
            )
            await running.publish(onboarded)
        for tenant in TENANTS.values():
            await eventually(partial(running.store.tenant, tenant), timeout=60, what="tenant onboarded")
        yield running


def auth(tenant: str, volunteer_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.issue(volunteer_id, [Role.VOLUNTEER], tenant=tenant)}"}


@dataclass(frozen=True)
class Engaged:
    """A volunteer with two engagements: a one-off need matching proposed and they accepted, and
    a weekly need proposed to someone nearer, which they picked themselves."""

    tenant: str
    volunteer: str
    nearer: str
    one_off: str
    weekly: str
    one_off_start: datetime
    weekly_starts_on: date
    headers: dict[str, str]


def opened(tenant: str, **details: Any) -> Envelope[Any]:
    need_id = str(uuid.uuid4())
    return registry_event(
        NeedOpened, tenant, need_id, 1, {"need_id": need_id, **need_details(**details), "place": PLACE}
    )


async def engaged(matching: Running, tenant: str) -> Engaged:
    zone = ZoneInfo(ZONES[tenant])
    today = datetime.now(zone).date()
    # Only this volunteer speaks Ukrainian: the one-off need is proposed to them.
    volunteer = registered(tenant, km_north=1.2, languages=(("de", "native"), ("ar", "c1"), ("uk", "c1")))
    nearer = registered(tenant, km_north=0.2)
    for event in (volunteer, nearer):
        await matching.publish(event)
    for event in (volunteer, nearer):
        await eventually(partial(matching.store.volunteer, tenant, event.subject), what="volunteer known")

    start = datetime.combine(today + timedelta(days=10), time(9, 0), tzinfo=zone)
    one_off_schedule = {"kind": "one_off", "start": start.isoformat(), "end": (start + timedelta(hours=3)).isoformat()}
    one_off = opened(tenant, languages=(("uk", "b2"),), schedule=one_off_schedule, description="Begleitung zum Amt")
    starts_on = today + timedelta(days=3)
    weekly_schedule = {
        "kind": "weekly",
        "slots": [{"weekday": "tuesday", "start": "16:00:00", "end": "18:00:00"}],
        "starts_on": starts_on.isoformat(),
        "ends_on": (starts_on + timedelta(days=90)).isoformat(),
    }
    weekly = opened(tenant, schedule=weekly_schedule, description="Lernhilfe Deutsch " + "x" * 80)
    await matching.publish(one_off, weekly)
    headers = auth(tenant, volunteer.subject)

    async def proposed() -> list[dict[str, Any]]:
        found = (await matching.http.get("/volunteers/me/proposals", headers=headers)).json()
        return [p for p in found if p["need_id"] == one_off.subject]

    proposal = (await eventually(proposed, what="the one-off need proposed"))[0]
    latitude = "52.52"  # PLACE's point
    # Until they commit, a volunteer reads the need's district and their distance, not its place.
    assert (proposal["district"], proposal["place"]) == (PLACE["district"], None)
    assert proposal["distance_km"] is not None and latitude not in json.dumps(proposal)
    # Rough (0.5 km steps, to the need's grid cell) and no score: no trilateration (issue 18).
    assert proposal["distance_km"] % 0.5 == 0 and proposal["score"] is None
    accepted = await matching.http.post(f"/volunteers/me/proposals/{proposal['proposal_id']}/accept", headers=headers)
    assert accepted.json() == {"outcome": "accepted"}, accepted.text
    assert (await proposed())[0]["place"] == PLACE  # committed: the exact place

    async def listed() -> list[dict[str, Any]]:
        found = (await matching.http.get("/volunteers/me/open-needs", headers=headers)).json()
        return [need for need in found if need["need_id"] == weekly.subject]

    (open_need,) = await eventually(listed, what="the weekly need open for a pick")
    assert open_need["district"] == PLACE["district"] and open_need["distance_km"] is not None
    assert "place" not in open_need and latitude not in json.dumps(open_need)
    assert open_need["distance_km"] % 0.5 == 0 and open_need["score"] is None
    picked = await matching.http.post(f"/volunteers/me/open-needs/{weekly.subject}/pick", headers=headers)
    assert picked.json() == {"outcome": "picked"}, picked.text
    return Engaged(
        tenant, volunteer.subject, nearer.subject, one_off.subject, weekly.subject, start, starts_on, headers
    )


async def feed_events(http: httpx.AsyncClient, path: str) -> dict[str, Any]:
    answer = await http.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/calendar; charset=utf-8"
    return {str(event["UID"]): event for event in Calendar.from_ical(answer.content).walk("VEVENT")}


async def assert_gone(http: httpx.AsyncClient, path: str) -> None:
    answer = await http.get(path)
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/plain")
    assert answer.text == "Not found"


async def test_accepted_proposals_and_picks_are_engagements_until_the_volunteer_steps_back(matching: Running) -> None:
    mine = await engaged(matching, TENANTS["engaged"])

    listed = (await matching.http.get("/volunteers/me/engagements", headers=mine.headers)).json()
    assert [(e["need_id"], e["kind"]) for e in listed] == [(mine.one_off, "proposal"), (mine.weekly, "pick")]
    one_off, weekly = listed
    assert one_off["category"] == "accompaniment_to_authorities" and one_off["description"] == "Begleitung zum Amt"
    assert one_off["schedule"]["kind"] == "one_off"
    assert datetime.fromisoformat(one_off["schedule"]["start"]) == mine.one_off_start
    assert weekly["schedule"]["slots"] == [{"weekday": "tuesday", "start": "16:00:00", "end": "18:00:00"}]
    assert weekly["schedule"]["starts_on"] == mine.weekly_starts_on.isoformat()
    assert one_off["place"] == PLACE and one_off["volunteers_needed"] == 1
    assert datetime.fromisoformat(one_off["committed_at"]) <= datetime.fromisoformat(weekly["committed_at"])

    # The nearer volunteer was only asked for the weekly need, which is staffed now: no engagement.
    theirs = await matching.http.get("/volunteers/me/engagements", headers=auth(mine.tenant, mine.nearer))
    assert theirs.status_code == 200 and theirs.json() == []

    stepped = await matching.http.post(f"/volunteers/me/engagements/{mine.one_off}/step-back", headers=mine.headers)
    assert stepped.json() == {"outcome": "stepped_back"}, stepped.text
    listed = (await matching.http.get("/volunteers/me/engagements", headers=mine.headers)).json()
    assert [e["need_id"] for e in listed] == [mine.weekly]

    coordinator = {"Authorization": f"Bearer {tokens.issue(mine.volunteer, [Role.COORDINATOR], tenant=mine.tenant)}"}
    assert (await matching.http.get("/volunteers/me/engagements", headers=coordinator)).status_code == 403
    assert (await matching.http.get("/volunteers/me/engagements")).status_code == 401


async def test_picks_and_step_backs_share_one_allowance_per_volunteer(matching: Running) -> None:
    """A loop of picks and step-backs (each tells the office and starts a search) is stopped with
    429 and Retry-After; another volunteer keeps their own allowance."""
    app_state = matching.app.state
    before = app_state.commitment_rate_limit
    app_state.commitment_rate_limit = PublicRateLimit("2/hour")
    try:
        tenant, looping, other = TENANTS["engaged"], str(uuid.uuid4()), str(uuid.uuid4())
        need = str(uuid.uuid4())  # no such need: refused with 404, and still counted
        pick, step_back = f"/volunteers/me/open-needs/{need}/pick", f"/volunteers/me/engagements/{need}/step-back"
        answers = [
            await matching.http.post(pick, headers=auth(tenant, looping)),
            await matching.http.post(step_back, headers=auth(tenant, looping)),
            await matching.http.post(pick, headers=auth(tenant, looping)),
            await matching.http.post(step_back, headers=auth(tenant, looping)),
        ]
        assert [answer.status_code for answer in answers] == [404, 404, 429, 429]
        assert int(answers[2].headers["retry-after"]) > 0
        assert answers[2].headers["content-type"].startswith("application/problem+json")
        assert (await matching.http.post(pick, headers=auth(tenant, other))).status_code == 404
    finally:
        app_state.commitment_rate_limit = before


async def test_the_calendar_feed_serves_the_engagements_and_is_replaced_revoked_and_only_the_volunteers(
    matching: Running,
) -> None:
    mine = await engaged(matching, TENANTS["feed"])
    london = ZoneInfo("Europe/London")
    assert (await matching.http.get("/volunteers/me/calendar-feed", headers=mine.headers)).json() == {
        "exists": False,
        "created_at": None,
    }

    created = await matching.http.post("/volunteers/me/calendar-feed", headers=mine.headers)
    assert created.status_code == 201
    path = created.json()["path"]
    assert path.startswith("/calendar-feeds/") and path.endswith(".ics")
    secret = path.removeprefix("/calendar-feeds/").removesuffix(".ics")
    stored = await matching.database["calendar_feeds"].find().to_list()
    assert len(stored) == 1 and secret not in str(stored)  # only the digest

    found = await feed_events(matching.http, path)
    assert sorted(found) == sorted([f"{mine.one_off}@lotse", f"{mine.weekly}@lotse"])
    one_off = found[f"{mine.one_off}@lotse"]
    assert one_off.decoded("dtstart") == mine.one_off_start.astimezone(UTC)
    assert one_off["DTSTART"].to_ical().endswith(b"Z")  # in UTC
    assert one_off.decoded("dtend") == mine.one_off_start.astimezone(UTC) + timedelta(hours=3)
    assert str(one_off["SUMMARY"]) == "Begleitung zu Behörden: Begleitung zum Amt"
    assert str(one_off["LOCATION"]) == "10178 Mitte"
    weekly = found[f"{mine.weekly}@lotse"]
    first_tuesday = mine.weekly_starts_on + timedelta(days=(1 - mine.weekly_starts_on.weekday()) % 7)
    assert weekly.decoded("dtstart") == datetime.combine(first_tuesday, time(16), tzinfo=london)
    assert weekly.decoded("dtend") == datetime.combine(first_tuesday, time(18), tzinfo=london)
    assert weekly["DTSTART"].params["TZID"] == "Europe/London"  # the tenant's zone
    rule = weekly["RRULE"]
    assert rule["FREQ"] == ["WEEKLY"] and rule["BYDAY"] == ["TU"]
    last_day = mine.weekly_starts_on + timedelta(days=90)
    assert rule["UNTIL"] == [datetime.combine(last_day, time(23, 59, 59), tzinfo=london).astimezone(UTC)]
    assert str(weekly["SUMMARY"]) == "Begleitung zu Behörden: Lernhilfe Deutsch " + "x" * 42 + "…"

    state = await matching.http.get("/volunteers/me/calendar-feed", headers=mine.headers)
    assert state.json()["exists"] is True and secret not in state.text

    # Another volunteer of the tenant neither sees nor revokes it: their "me" is themselves.
    other = auth(mine.tenant, mine.nearer)
    assert (await matching.http.get("/volunteers/me/calendar-feed", headers=other)).json()["exists"] is False
    assert (await matching.http.delete("/volunteers/me/calendar-feed", headers=other)).status_code == 404
    assert (await feed_events(matching.http, path)).keys() == found.keys()

    recreated = await matching.http.post("/volunteers/me/calendar-feed", headers=mine.headers)
    new_path = recreated.json()["path"]
    assert recreated.status_code == 201 and new_path != path
    await assert_gone(matching.http, path)
    assert (await feed_events(matching.http, new_path)).keys() == found.keys()

    revoked = await matching.http.delete("/volunteers/me/calendar-feed", headers=mine.headers)
    assert revoked.status_code == 204
    await assert_gone(matching.http, new_path)
    assert (await matching.http.get("/volunteers/me/calendar-feed", headers=mine.headers)).json()["exists"] is False
    assert (await matching.http.delete("/volunteers/me/calendar-feed", headers=mine.headers)).status_code == 404
    await assert_gone(matching.http, "/calendar-feeds/not-a-secret.ics")

    stranger = auth(mine.tenant, str(uuid.uuid4()))  # a token matching has no volunteer for
    assert (await matching.http.post("/volunteers/me/calendar-feed", headers=stranger)).status_code == 404


async def test_erasure_deletes_the_feed(matching: Running) -> None:
    mine = await engaged(matching, TENANTS["erase"])
    path = (await matching.http.post("/volunteers/me/calendar-feed", headers=mine.headers)).json()["path"]
    assert len(await feed_events(matching.http, path)) == 2

    erased = registry_event(
        VolunteerErased,
        mine.tenant,
        mine.volunteer,
        2,
        {"volunteer_id": mine.volunteer, "erased_at": datetime.now(UTC).isoformat()},
    )
    await matching.publish(erased)

    async def feed_deleted() -> bool:
        return await matching.store.calendar_feed(mine.tenant, mine.volunteer) is None

    await eventually(feed_deleted, what="the feed deleted with the volunteer's data")
    await assert_gone(matching.http, path)
    assert not await matching.database["calendar_feeds"].count_documents({"volunteer_id": mine.volunteer})
    # A token that outlives the erasure cannot bring a feed back.
    assert (await matching.http.post("/volunteers/me/calendar-feed", headers=mine.headers)).status_code == 404


Visitor = Callable[[str], httpx.AsyncClient]


@pytest_asyncio.fixture(loop_scope="module")
async def portal(stack: Stack, matching: Running) -> AsyncIterator[Visitor]:
    """The portal in front of this matching service (a client for a visitor at an address): its
    feed route reaches matching in process, so every feed request arrives at matching from one
    client, as in production from the portal's one address. The portal's own limit per visitor's
    address is the same as matching's per feed."""
    settings = PortalSettings(
        jwt_issuer=tokens.issuer().url,
        mongo_url=stack.mongo_url,
        database=f"portal_{uuid.uuid4().hex[:10]}",
        public_rate_limit=FEED_LIMIT,
        matching_url="http://matching",
        registry_url="http://127.0.0.1:9",  # not asked by the feed route
    )
    app = create_portal(settings)
    async with app.router.lifespan_context(app):
        backends = app.state.portal.backends
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=matching.app)) as to_matching:
            backends.http = to_matching

            def visitor(address: str) -> httpx.AsyncClient:
                transport = httpx.ASGITransport(app=app, client=(address, 4711))
                return httpx.AsyncClient(transport=transport, base_url="http://portal")

            yield visitor
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo_url)
    await mongo.drop_database(settings.database)
    await mongo.close()


async def test_each_feed_has_its_own_allowance_through_the_portal_and_a_429_stays_a_429(
    matching: Running, portal: Visitor
) -> None:
    tenant = TENANTS["limits"]
    volunteers = [registered(tenant), registered(tenant)]
    await matching.publish(*volunteers)
    for event in volunteers:
        await eventually(partial(matching.store.volunteer, tenant, event.subject), what="volunteer known")
    paths = []
    for event in volunteers:
        created = await matching.http.post("/volunteers/me/calendar-feed", headers=auth(tenant, event.subject))
        assert created.status_code == 201, created.text
        paths.append(created.json()["path"])
    mine, theirs = paths

    async with portal("203.0.113.1") as first, portal("198.51.100.2") as second:
        # One feed asked too often (its calendar app misbehaves, or someone knows the address):
        # matching refuses that feed, and the portal says so (429 with Retry-After), not "down" (503).
        assert [(await first.get(mine)).status_code for _ in range(3)] == [200, 200, 200]
        refused = await second.get(mine)
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) > 0

        # Another volunteer's feed, through the same portal (so from the same address to matching).
        answer = await second.get(theirs)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/calendar")

        # The portal's own limit per visitor's address: the first visitor has used theirs up.
        assert (await first.get(theirs)).status_code == 429
