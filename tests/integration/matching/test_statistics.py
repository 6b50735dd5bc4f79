"""Matching's staffing statistics through its API, on the real database: time to staff and
proposals per acceptance are withheld below five (4 needs: null, 5 needs: shown), an initiative
admin gets their organisation's figures only, other roles and tenants nothing of ours.

The needs and proposals are written as the service stores them (its own records' documents), so
that each test knows its counts exactly; how staffing produces them is tested in
tests/unit/matching/test_statistics.py with the real use cases.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from lotse_devstack import Stack
from lotse_matching.app import create_app
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import (
    NeedRecord,
    NeedStatus,
    Proposal,
    ProposalKind,
    ProposalStatus,
    Staffing,
    StaffingState,
    Store,
)
from lotse_runtime.auth import Role
from tests.integration.matching.support import need_details, service_settings, work_topics
from tests.support import tokens
from tests.support.running import RunningService, serving

pytestmark = pytest.mark.asyncio(loop_scope="module")

PREFIX = f"s{uuid.uuid4().hex[:8]}"
OURS, THEIRS = f"{PREFIX}-ours", f"{PREFIX}-theirs"
SMALL, FIVE = str(uuid.uuid4()), str(uuid.uuid4())  # our two initiatives
OPENED = datetime(2026, 3, 2, 9, tzinfo=UTC)


class Running(RunningService[MatchingSettings]):
    @property
    def store(self) -> Store:
        store: Store = self.app.state.matching.store
        return store


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def matching(stack: Stack) -> AsyncIterator[Running]:
    settings = service_settings(stack, f"stats-{uuid.uuid4().hex[:8]}")
    async with serving(
        Running, stack, create_app(settings), settings, PREFIX, own_topics=work_topics(settings)
    ) as running:
        # SMALL: four needs staffed after 1, 2, 3 and 4 hours; FIVE: five after 2, 4, 6, 8 and 10 hours.
        for hours in (1, 2, 3, 4):
            await staffed_need(running, OURS, SMALL, hours=hours, declined=1)
        for hours in (2, 4, 6, 8, 10):
            await staffed_need(running, OURS, FIVE, hours=hours, declined=0)
        yield running


async def staffed_need(running: Running, tenant: str, organisation_id: str, *, hours: int, declined: int) -> str:
    """A need staffed ``hours`` after it opened by one accepted proposal, after ``declined`` declines."""
    need_id, volunteer_id = str(uuid.uuid4()), str(uuid.uuid4())
    staffed = OPENED + timedelta(hours=hours)
    need = NeedRecord(
        tenant=tenant,
        need_id=need_id,
        version=1,
        status=NeedStatus.OPEN,
        details={**need_details(), "organisation_id": organisation_id},
        staffing=Staffing.from_document(
            {
                "version": 3,
                "state": StaffingState.STAFFED.value,
                "committed": [volunteer_id],
                "opened_at": OPENED,
                "escalate_at": OPENED + timedelta(days=30),
                "escalate_reason": "proposals_expired",
                "escalated": False,
            }
        ),
    )
    await running.store.needs.insert_one(need.to_document())
    answers = [(volunteer_id, ProposalStatus.ACCEPTED)]
    answers += [(str(uuid.uuid4()), ProposalStatus.DECLINED) for _ in range(declined)]
    for volunteer, status in answers:
        proposal = Proposal(
            id=str(uuid.uuid4()),
            tenant=tenant,
            need_id=need_id,
            volunteer_id=volunteer,
            kind=ProposalKind.PROPOSAL,
            status=status,
            reasons=(),
            proposed_at=OPENED,
            expires_at=OPENED + timedelta(days=2),
            answered_at=staffed,
            answered_via=None,
            score=0.5,
            distance_km=1.0,
        )
        await running.store.proposals.insert_one(proposal.to_document())
    return need_id


def headers(*roles: Role, tenant: str | None, organisation: str | None = None) -> dict[str, str]:
    token = tokens.issue(str(uuid.uuid4()), roles, tenant=tenant, organisation=organisation)
    return {"Authorization": f"Bearer {token}"}


async def figures(matching: Running, caller: dict[str, str], tenant: str = OURS, **params: str) -> Any:
    response = await matching.http.get(f"/tenants/{tenant}/statistics", params=params, headers=caller)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_tenants_figures_are_shown_from_five_needs_on(matching: Running) -> None:
    body = await figures(matching, headers(Role.COORDINATOR, tenant=OURS))
    assert body["tenant"] == OURS and body["organisation_id"] is None and body["suppressed_below"] == 5
    # Nine staffed needs: 1, 2, 2, 3, 4, 4, 6, 8, 10 hours.
    assert body["time_to_staff"] == {"staffed_needs": 9, "median_hours": 4.0, "p75_hours": 6.0, "p90_hours": 8.4}
    # Thirteen proposals, nine accepted, four declined (withheld).
    assert body["proposals"] == {
        "proposals": 13,
        "accepted": 9,
        "declined": None,
        "expired": None,
        "withdrawn": None,
        "open": None,
        "picks": None,
        "proposals_per_acceptance": 1.4,
    }


async def test_four_staffed_needs_of_an_initiative_are_withheld_five_are_shown(matching: Running) -> None:
    small = await figures(matching, headers(Role.INITIATIVE_ADMIN, tenant=OURS, organisation=SMALL))
    assert small["organisation_id"] == SMALL
    assert small["time_to_staff"] == {"staffed_needs": None, "median_hours": None, "p75_hours": None, "p90_hours": None}
    assert small["proposals"]["proposals"] == 8 and small["proposals"]["accepted"] is None
    assert small["proposals"]["proposals_per_acceptance"] is None

    five = await figures(matching, headers(Role.INITIATIVE_ADMIN, tenant=OURS, organisation=FIVE))
    assert five["time_to_staff"] == {"staffed_needs": 5, "median_hours": 6.0, "p75_hours": 8.0, "p90_hours": 9.2}
    assert five["proposals"]["accepted"] == 5 and five["proposals"]["proposals_per_acceptance"] == 1.0
    # A coordinator may look at one initiative; an initiative admin at no other one.
    assert await figures(matching, headers(Role.COORDINATOR, tenant=OURS), organisation_id=FIVE) == five
    other = await matching.http.get(
        f"/tenants/{OURS}/statistics",
        params={"organisation_id": FIVE},
        headers=headers(Role.INITIATIVE_ADMIN, tenant=OURS, organisation=SMALL),
    )
    assert other.status_code == 404


async def test_other_roles_and_tenants_get_nothing_of_ours(matching: Running) -> None:
    ours = f"/tenants/{OURS}/statistics"
    for role in (Role.VOLUNTEER, Role.PARTNER):
        denied = await matching.http.get(ours, headers=headers(role, tenant=OURS))
        assert denied.status_code == 403, role
    no_tenant = await matching.http.get(ours, headers=headers(Role.PLATFORM_ADMIN, Role.COORDINATOR, tenant=None))
    assert no_tenant.status_code == 403
    # Their coordinator, and their initiative admin claiming our initiative's id, learn nothing of ours.
    intruders = (
        headers(Role.COORDINATOR, tenant=THEIRS),
        headers(Role.INITIATIVE_ADMIN, tenant=THEIRS, organisation=FIVE),
        headers(*(role for role in Role if role != Role.PLATFORM_ADMIN), tenant=THEIRS, organisation=FIVE),
    )
    for caller in intruders:
        for params in ({}, {"organisation_id": FIVE}):
            response = await matching.http.get(ours, params=params, headers=caller)
            assert response.status_code == 404 and "time_to_staff" not in response.text
        # Their own figures are theirs: nothing staffed there.
        theirs = await figures(matching, caller, THEIRS)
        assert theirs["tenant"] == THEIRS and OURS not in str(theirs)
        assert theirs["time_to_staff"]["staffed_needs"] is None and theirs["proposals"]["proposals"] is None
