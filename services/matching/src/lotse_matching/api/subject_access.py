"""Everything matching holds about one volunteer (DSGVO Art. 15), for the volunteer and the
office: the shape and who may ask are ``lotse_runtime.subject_access``'s. The outbox is not a
section: its events are about needs and proposals (shown here), keyed by the need."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from lotse_matching.api.access import Caller, StoreDep
from lotse_runtime.problems import problem_responses
from lotse_runtime.subject_access import (
    SUBJECT_ACCESS_PATH,
    Admitted,
    Section,
    SubjectAccess,
    record_office_export,
    section,
)

router = APIRouter(tags=["volunteers"])


class MatchingSubjectAccess(SubjectAccess):
    profile: Section
    proposals: Section
    committed_needs: Section
    calendar_feed: Section
    hours: Section
    audit: Section


# Which collection each section shows, and why a collection naming volunteers is none.
COLLECTIONS = {
    "profile": "volunteers",
    "proposals": "proposals",
    "committed_needs": "needs",
    "calendar_feed": "calendar_feeds",
    "hours": "hours",
    "audit": "audit",
}
NOT_SECTIONS = {
    "outbox": "the proposals' events, keyed by the need, shown in proposals",
    "inbox": "ids of the events processed, nothing about anyone",
    "person_keys": "a copy of the key the registry's export names, never shown",
}


@router.get(
    SUBJECT_ACCESS_PATH, responses=problem_responses(404, 422), summary="Everything matching holds about a volunteer"
)
async def subject_access(store: StoreDep, asked: Admitted, principal: Caller) -> MatchingSubjectAccess:
    """The office's export is recorded in the audit trail (``principal``: the caller, its actor)."""
    held = await store.held_about_volunteer(asked.tenant, asked.volunteer_id)
    export = MatchingSubjectAccess(
        service="matching",
        tenant=asked.tenant,
        volunteer_id=asked.volunteer_id,
        produced_at=datetime.now(UTC),
        profile=section(
            "Matching's copy of the profile it proposes from: skills, languages, area, availability, "
            "certificates (no contact details).",
            held.profile,
        ),
        proposals=section("Every proposal made to the volunteer, with its reasons and the answer.", held.proposals),
        committed_needs=section("The needs the volunteer committed to, and their state.", held.committed_needs),
        calendar_feed=section(
            "The calendar feed of the engagements: only a digest of its secret address is kept.",
            held.calendar_feed,
            secrets=("secret_sha256",),
        ),
        hours=section("The hours logged, and who confirmed or rejected them.", held.hours),
        audit=section(
            "Who changed the volunteer's proposals, hours or calendar feed, and when (not the values).", held.audit
        ),
    )
    await record_office_export(store.database, asked, {name for name in COLLECTIONS if getattr(export, name).records})
    return export
