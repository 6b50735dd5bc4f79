"""A need that requires a police certificate, on the real registry and matching with the broker and
database between them (issue 16): a volunteer who only declares a certificate "valid until 2099" is
neither proposed for it nor may pick it, until the office records that it has seen the
certificate; then matching proposes them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from lotse_devstack import Stack
from lotse_matching.app import create_app as matching_app
from lotse_matching.settings import MatchingSettings
from lotse_runtime.auth import Role
from tests.integration.matching.support import service_settings, work_topics
from tests.integration.registry.conftest import RunningRegistry
from tests.integration.registry.support import add_organisation, need_body, onboard, volunteer_body
from tests.support.running import RunningService, serving
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

MatchingRunning = RunningService[MatchingSettings]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def matching(stack: Stack) -> AsyncIterator[MatchingRunning]:
    settings = service_settings(stack, f"cert-{uuid.uuid4().hex[:8]}")
    async with serving(
        RunningService, stack, matching_app(settings), settings, "unused", own_topics=work_topics(settings)
    ) as running:
        yield running


async def test_a_declared_certificate_is_not_enough_until_the_office_checks_it(
    registry: RunningRegistry, matching: MatchingRunning
) -> None:
    tenant = await onboard(registry)
    org = await add_organisation(registry, tenant)
    office = registry.auth(Role.COORDINATOR, tenant=tenant)
    volunteer_id = str(uuid.uuid4())
    me = registry.auth(Role.VOLUNTEER, tenant=tenant, subject=volunteer_id)
    declared = [{"kind": "extended_police_certificate", "issued_on": "2026-01-01", "valid_until": "2099-12-31"}]
    registered = await registry.http.post(
        f"/tenants/{tenant}/volunteers",
        json=volunteer_body(org, skills=["accompaniment"], certificates=declared),
        headers=me,
    )
    assert registered.status_code == 201, registered.text
    # Tuesdays 16 to 18 from next week on, where the volunteer is free (Tuesdays 16 to 19), nearby.
    today = datetime.now(UTC).date()
    next_week = today + timedelta(days=7 + (1 - today.weekday()) % 7)
    schedule = {
        "kind": "weekly",
        "slots": [{"weekday": "tuesday", "start": "16:00:00", "end": "18:00:00"}],
        "starts_on": next_week.isoformat(),
    }
    opened = await registry.http.post(
        f"/tenants/{tenant}/needs",
        json=need_body(org, schedule=schedule, certificate_required="extended_police_certificate"),
        headers=office,
    )
    assert opened.status_code == 201, opened.text
    need_id = opened.json()["need_id"]
    store = matching.app.state.matching.store

    async def both_known() -> bool:
        return (
            await store.volunteer(tenant, volunteer_id) is not None
            and await store.need_record(tenant, need_id) is not None
        )

    # Once matching has read both, it has decided about them (in the same transactions).
    await eventually(both_known, what="matching to know the volunteer and the need")
    as_volunteer = registry.auth(Role.VOLUNTEER, tenant=tenant, subject=volunteer_id)
    assert (await matching.http.get("/volunteers/me/proposals", headers=as_volunteer)).json() == []
    assert (await matching.http.get("/volunteers/me/open-needs", headers=as_volunteer)).json() == []
    picked = await matching.http.post(f"/volunteers/me/open-needs/{need_id}/pick", headers=as_volunteer)
    assert picked.status_code == 409 and picked.json()["outcome"] == "not_a_fit"

    checked = await registry.http.post(
        f"/tenants/{tenant}/volunteers/{volunteer_id}/certificate-checks",
        json={"kind": "extended_police_certificate", "seen_on": today.isoformat(), "valid_until": "2031-11-30"},
        headers=office,
    )
    assert checked.status_code == 201, checked.text

    async def proposed() -> list[dict[str, Any]]:
        found = (await matching.http.get("/volunteers/me/proposals", headers=as_volunteer)).json()
        return [proposal for proposal in found if proposal["need_id"] == need_id]

    (proposal,) = await eventually(proposed, what="matching to propose the volunteer once the office checked")
    assert "certificate" in [reason["code"] for reason in proposal["reasons"]]
