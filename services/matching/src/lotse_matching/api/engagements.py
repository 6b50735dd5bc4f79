"""A volunteer's engagements (token subject = volunteer id) and their calendar feed: the secret
feed URL is created, shown once, asked about and revoked with the volunteer's token, and read
without one by calendar applications (``/calendar-feeds/<secret>.ics``, rate-limited per feed: the
portal fetches every volunteer's feed from one address, and limits its visitors per address).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field, TypeAdapter, WithJsonSchema

from lotse_contracts.events.values import IsoDate, IsoTime, OneOffWindow, Place, WeeklySlot
from lotse_matching.api.access import Service, Volunteer
from lotse_matching.calendar_feed import build_calendar, entry_of, feed_path, is_secret, secret_sha256
from lotse_matching.profiles import timezone_of
from lotse_matching.service import Matching
from lotse_matching.store import EngagementRecord, ProposalKind
from lotse_runtime.auth import tenant_of
from lotse_runtime.http_guards import public_rate_limit_per
from lotse_runtime.problems import Problem, problem_responses

router = APIRouter()
CALENDAR_MEDIA_TYPE = "text/calendar; charset=utf-8"

# A wall-clock time in the tenant's zone. JSON Schema's format "time" is RFC 3339's, which demands
# an offset that local times do not have, so a client validating formats would refuse "16:00:00".
LocalTime = Annotated[
    IsoTime,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?$",
            "examples": ["16:00:00"],
        }
    ),
]


class LocalSlot(WeeklySlot):
    """A weekly slot (the contract's, with its checks) whose times are documented as local times."""

    start: LocalTime = Field(description="Local start time.", examples=["16:00:00"])
    end: LocalTime = Field(description="Local end time, after start.", examples=["18:00:00"])


class LocalWeekly(BaseModel):
    """The contract's `WeeklyRecurrence`, with `LocalSlot`s."""

    kind: Literal["weekly"]
    slots: list[LocalSlot] = Field(min_length=1, description="Weekly slots in the tenant's local time.")
    starts_on: IsoDate
    ends_on: IsoDate | None = None


EngagementSchedule = Annotated[OneOffWindow | LocalWeekly, Field(discriminator="kind")]
SCHEDULE: TypeAdapter[OneOffWindow | LocalWeekly] = TypeAdapter(EngagementSchedule)


class EngagementView(BaseModel):
    need_id: str
    category: str
    description: str
    schedule: EngagementSchedule  # as the registry gave it: a one-off window or weekly slots
    place: Place  # exact: the volunteer committed to go there
    volunteers_needed: int
    kind: ProposalKind  # proposal: matching asked and they accepted; pick: they took it themselves
    committed_at: datetime


class CalendarFeedCreated(BaseModel):
    path: str  # shown once: only its digest is kept


class CalendarFeedState(BaseModel):
    exists: bool
    created_at: datetime | None


@router.get("/volunteers/me/engagements", summary="My current engagements, oldest commitment first")
async def my_engagements(matching: Service, principal: Volunteer) -> list[EngagementView]:
    engagements = await matching.store.engagements_of(tenant_of(principal), principal.volunteer_id)
    return [engagement_view(engagement) for engagement in engagements]


@router.post(
    "/volunteers/me/calendar-feed",
    status_code=201,
    responses=problem_responses(404),
    summary="A new secret calendar feed URL of my engagements (revokes the earlier one); shown only now",
)
async def create_calendar_feed(matching: Service, principal: Volunteer) -> CalendarFeedCreated:
    secret = await matching.new_calendar_feed(tenant_of(principal), principal.volunteer_id)
    if secret is None:
        raise Problem(404, "Not found", "matching does not know you (yet)")
    return CalendarFeedCreated(path=feed_path(secret))


@router.get("/volunteers/me/calendar-feed", summary="Whether I have a calendar feed (never its URL)")
async def calendar_feed_state(matching: Service, principal: Volunteer) -> CalendarFeedState:
    feed = await matching.store.calendar_feed(tenant_of(principal), principal.volunteer_id)
    return CalendarFeedState(exists=feed is not None, created_at=feed.created_at if feed else None)


@router.delete(
    "/volunteers/me/calendar-feed",
    status_code=204,
    responses=problem_responses(404),
    summary="Revoke my calendar feed",
)
async def revoke_calendar_feed(matching: Service, principal: Volunteer) -> None:
    if not await matching.revoke_calendar_feed(tenant_of(principal), principal.volunteer_id):
        raise Problem(404, "Not found", "you have no calendar feed")


def _feed_of(request: Request) -> str:
    """Whose allowance a feed request uses: the feed's (its secret's hash, never the secret)."""
    return "calendar-feed:" + secret_sha256(str(request.path_params.get("secret", "")))


@router.get(
    "/calendar-feeds/{secret}.ics",
    dependencies=[Depends(public_rate_limit_per(_feed_of))],
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}, 404: {"content": {"text/plain": {}}}},
    summary="A volunteer's engagements as iCalendar (RFC 5545); the secret in the path is the credential",
)
async def calendar_feed(matching: Service, secret: str) -> Response:
    feed = await matching.store.calendar_feed_by_secret(secret_sha256(secret)) if is_secret(secret) else None
    if feed is None:
        # Unknown, revoked or malformed alike, and nothing that tells them apart.
        return PlainTextResponse("Not found", status_code=404)
    body = await calendar_of(matching, feed.tenant, feed.volunteer_id)
    return Response(body, media_type=CALENDAR_MEDIA_TYPE)


async def calendar_of(matching: Matching, tenant: str, volunteer_id: str) -> bytes:
    entries = [entry_of(e) for e in await matching.store.engagements_of(tenant, volunteer_id)]
    settings = await matching.store.tenant(tenant)
    return build_calendar(entries, timezone_of(settings.get("timezone") if settings else None), matching.clock())


def engagement_view(engagement: EngagementRecord) -> EngagementView:
    details = engagement.need.details
    return EngagementView(
        need_id=engagement.need.need_id,
        category=details["category"],
        description=details["description"],
        schedule=SCHEDULE.validate_python(details["schedule"]),
        place=Place.model_validate(details["place"]),
        volunteers_needed=engagement.need.volunteers_needed,
        kind=engagement.proposal.kind,
        committed_at=engagement.committed_at,
    )
