"""Every write route of matching and notifications is one whose writes the audit trail records
(issue 18): a new route fails here until it notes its writes (``Transaction.audit``) under a caller
dependency that names the actor, and is added below with the test that shows its entry. The
registry's write routes are checked on the running registry (tests/integration/registry/test_audit.py)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from lotse_matching.api import router as matching_router
from lotse_notifications.api import router as notifications_router

WRITES = {"POST", "PUT", "PATCH", "DELETE"}

# Route -> where its writes are noted (the integration tests that show entries in brackets).
MATCHING = {
    "POST /answers/{token}": "NeedWork.save, as the volunteer the link was sent to",
    "POST /volunteers/me/proposals/{proposal_id}/accept": "NeedWork.save (matching/test_office.py)",
    "POST /volunteers/me/proposals/{proposal_id}/decline": "NeedWork.save",
    "POST /volunteers/me/engagements/{need_id}/step-back": "NeedWork.save",
    "POST /volunteers/me/open-needs/{need_id}/pick": "NeedWork.save",
    "POST /volunteers/me/calendar-feed": "Matching.new_calendar_feed",
    "DELETE /volunteers/me/calendar-feed": "Matching.revoke_calendar_feed",
    "POST /volunteers/me/hours": "Matching.log_hours (matching/test_hours.py)",
    "PUT /volunteers/me/hours/{entry_id}": "Matching.correct_hours (matching/test_hours.py)",
    "DELETE /volunteers/me/hours/{entry_id}": "Matching.delete_hours (matching/test_hours.py)",
    "POST /tenants/{tenant}/hours/{entry_id}/confirm": "Matching.decide_hours (matching/test_hours.py)",
    "POST /tenants/{tenant}/hours/{entry_id}/reject": "Matching.decide_hours (matching/test_hours.py)",
    "POST /tenants/{tenant}/needs/{need_id}/proposals": "NeedWork.save",
    "POST /tenants/{tenant}/needs/{need_id}/proposals/{proposal_id}/answer": "NeedWork.save (matching/test_office.py)",
    "POST /tenants/{tenant}/needs/{need_id}/committed/{volunteer_id}/release": "NeedWork.save (test_office.py)",
    "POST /tenants/{tenant}/needs/{need_id}/rounds": "NeedWork.save",
}
NOTIFICATIONS = {
    "POST /me/threads": "Store.open_thread (notifications/test_threads.py)",
    "POST /me/threads/{thread_id}/messages": "Store.add_thread_message (notifications/test_threads.py)",
    "POST /threads/{thread_id}/messages": "Store.add_thread_message (notifications/test_threads.py)",
    "POST /threads/{thread_id}/closing": "Store.set_thread_state (notifications/test_threads.py)",
    "POST /threads/{thread_id}/reopening": "Store.set_thread_state (notifications/test_threads.py)",
    "POST /me/messages/{message_id}/read": "Store.mark_read (notifications/test_threads.py)",
    "PUT /mail-preferences/office": "Store.save_mail_preference (notifications/test_threads.py)",
    "PUT /mail-preferences/organisations/{organisation_id}": "Store.save_mail_preference",
    "POST /digest": "Planner.plan_digest (notifications/test_threads.py)",
    "PUT /templates/{kind}/{language}": "Store.save_template_override",
    "DELETE /templates/{kind}/{language}": "Store.delete_template_override",
    "PUT /guidance/{language}": "Store.save_guidance",
    "POST /webhooks": "Store.add_webhook",
    "DELETE /webhooks/{webhook_id}": "Store.delete_webhook",
}


def write_routes(router: APIRouter) -> set[str]:
    """The router's write operations, as its OpenAPI document lists them."""
    app = FastAPI()
    app.include_router(router)
    paths = app.openapi()["paths"]
    return {f"{method.upper()} {path}" for path, item in paths.items() for method in item if method.upper() in WRITES}


def test_every_write_route_of_matching_is_audited() -> None:
    assert write_routes(matching_router) == set(MATCHING)


def test_every_write_route_of_notifications_is_audited() -> None:
    assert write_routes(notifications_router()) == set(NOTIFICATIONS)
