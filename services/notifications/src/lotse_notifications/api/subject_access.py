"""Everything notifications holds about one volunteer (DSGVO Art. 15), for the volunteer and the
office: the shape and who may ask are ``lotse_runtime.subject_access``'s (the tenant in the path
must be the token's). The outbox is not a section: its events are the deliveries' outcomes,
shown in ``deliveries``."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from lotse_notifications.api.access import NOT_FOUND, Caller, StoreDep
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


class NotificationsSubjectAccess(SubjectAccess):
    contact: Section
    engagements: Section
    messages: Section
    threads: Section
    post_counts: Section
    deliveries: Section
    digest_items: Section
    audit: Section


# Which collection each section shows, and why a collection naming volunteers is none.
COLLECTIONS = {
    "contact": "contacts",
    "engagements": "proposals",
    "messages": "messages",
    "threads": "threads",
    "post_counts": "post_counts",
    "deliveries": "deliveries",
    "digest_items": "digest_items",
    "audit": "audit",
}
NOT_SECTIONS = {
    "outbox": "the deliveries' outcomes as events, shown in deliveries",
    "inbox": "ids of the events processed, nothing about anyone",
    "person_keys": "a copy of the key the registry's export names, never shown",
}


@router.get(
    SUBJECT_ACCESS_PATH,
    responses={**NOT_FOUND, **problem_responses(422)},
    summary="Everything notifications holds about a volunteer",
)
async def subject_access(store: StoreDep, asked: Admitted, principal: Caller) -> NotificationsSubjectAccess:
    """The office's export is recorded in the audit trail (``principal``: the caller, its actor)."""
    held = await store.held_about_volunteer(asked.tenant, asked.volunteer_id)
    export = NotificationsSubjectAccess(
        service="notifications",
        tenant=asked.tenant,
        volunteer_id=asked.volunteer_id,
        produced_at=datetime.now(UTC),
        contact=section(
            "How to reach the volunteer: addresses, channels, language, quiet hours, and which channels failed.",
            held.contact,
        ),
        engagements=section(
            "Proposals and engagements, with their schedule, for reminders and thanks.", held.engagements
        ),
        messages=section("The in-app inbox.", held.messages),
        threads=section("Questions to the coordination office and its answers.", held.threads),
        post_counts=section(
            "How many questions were sent in the last hours (a limit against floods).", held.post_counts
        ),
        deliveries=section(
            "The delivery log: what was sent to the volunteer, on which channel, when and with what outcome.",
            held.deliveries,
            secrets=("payload.accept_url", "payload.decline_url", "claimed_by"),
        ),
        digest_items=section("What waits for the volunteer's next daily digest.", held.digest_items),
        audit=section(
            "Who wrote in the volunteer's questions or changed their inbox, and when (not the texts).", held.audit
        ),
    )
    await record_office_export(store.db, asked, {name for name in COLLECTIONS if getattr(export, name).records})
    return export
