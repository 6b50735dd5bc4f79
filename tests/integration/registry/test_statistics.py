"""The registry's statistics through its API, on the real database: every count below five is
withheld (4 is null, 5 is 5), an initiative admin gets their organisation's figures only, and
another tenant's tokens get nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from lotse_runtime.auth import Role
from tests.integration.registry.conftest import RunningRegistry
from tests.integration.registry.support import add_organisation, need_body, onboard, volunteer_body

pytestmark = pytest.mark.asyncio(loop_scope="module")

MITTE = {"point": {"lat": 52.5, "lon": 13.4}, "postcode": "10115", "district": "Mitte"}
NORD = {"point": {"lat": 52.56, "lon": 13.41}, "postcode": "13187", "district": "Nord"}
NOWHERE = {"point": {"lat": 52.51, "lon": 13.39}, "postcode": "10117"}


@dataclass
class Town:
    """Initiative ``small`` reports four translation needs in Mitte and has four volunteers (all
    engaged); initiative ``five`` five childcare needs in Nord and five volunteers; one need of
    ``five`` has no district."""

    tenant: str
    small: str
    five: str


async def _need(registry: RunningRegistry, tenant: str, organisation_id: str, **overrides: Any) -> str:
    response = await registry.http.post(
        f"/tenants/{tenant}/needs",
        json=need_body(organisation_id, **overrides),
        headers=registry.auth(Role.COORDINATOR, tenant=tenant),
    )
    assert response.status_code == 201, response.text
    need_id: str = response.json()["need_id"]
    return need_id


async def _volunteer(registry: RunningRegistry, tenant: str, organisation_id: str) -> str:
    volunteer_id = str(uuid.uuid4())
    response = await registry.http.post(
        f"/tenants/{tenant}/volunteers",
        json=volunteer_body(organisation_id),
        headers=registry.auth(Role.VOLUNTEER, tenant=tenant, subject=volunteer_id),
    )
    assert response.status_code == 201, response.text
    return volunteer_id


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def town(registry: RunningRegistry) -> Town:
    tenant = await onboard(registry)
    small = await add_organisation(registry, tenant, name="Kleine Initiative")
    five = await add_organisation(registry, tenant, name="Fünfer-Initiative")
    translation = {"category": "translation", "required_skills": [], "place": MITTE}
    needs = [await _need(registry, tenant, small, **translation) for _ in range(4)]
    childcare = {"category": "childcare", "required_skills": [], "place": NORD}
    for _ in range(5):
        await _need(registry, tenant, five, **childcare)
    await _need(registry, tenant, five, category="childcare", required_skills=[], place=NOWHERE)
    engaged = [await _volunteer(registry, tenant, small) for _ in range(4)]
    for _ in range(5):
        await _volunteer(registry, tenant, five)
    # Engagements come from matching's outcomes (tested in test_consumers); here only how they count.
    await registry.database.volunteers.update_many(
        {"tenant": tenant, "_id": {"$in": engaged}}, {"$set": {"engagements": needs[:1]}}
    )
    return Town(tenant, small, five)


async def _statistics(registry: RunningRegistry, tenant: str, headers: dict[str, str], **params: str) -> Any:
    response = await registry.http.get(f"/tenants/{tenant}/statistics", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_counts_below_five_are_withheld_and_five_is_shown(registry: RunningRegistry, town: Town) -> None:
    body = await _statistics(registry, town.tenant, registry.auth(Role.COORDINATOR, tenant=town.tenant))
    assert body["organisation_id"] is None and body["suppressed_below"] == 5
    assert body["needs_by_category"] == {
        "childcare": {"open": 6, "staffed": None, "unstaffed": None},
        "translation": {"open": None, "staffed": None, "unstaffed": None},
    }
    assert body["needs_by_district"] == [
        {"district": "Mitte", "open": None, "staffed": None, "unstaffed": None},
        {"district": "Nord", "open": 5, "staffed": None, "unstaffed": None},
        {"district": None, "open": None, "staffed": None, "unstaffed": None},
    ]
    # Nine registered, four engaged (withheld), none withdrawn or erased (withheld).
    assert body["volunteers"] == {"active": 9, "engaged": None, "withdrawn": None, "erased": None}
    # No number below five anywhere in the answer, not even as a total.
    assert all(value >= 5 for value in _numbers(body))


async def test_the_fifth_engaged_volunteer_makes_the_count_visible(registry: RunningRegistry, town: Town) -> None:
    coordinator = registry.auth(Role.COORDINATOR, tenant=town.tenant)
    fifth = await registry.database.volunteers.find_one(
        {"tenant": town.tenant, "organisation_id": town.five, "status": "active"}
    )
    assert fifth is not None
    await registry.database.volunteers.update_one({"_id": fifth["_id"]}, {"$set": {"engagements": ["some-need"]}})
    try:
        assert (await _statistics(registry, town.tenant, coordinator))["volunteers"]["engaged"] == 5
    finally:
        await registry.database.volunteers.update_one({"_id": fifth["_id"]}, {"$set": {"engagements": []}})
    assert (await _statistics(registry, town.tenant, coordinator))["volunteers"]["engaged"] is None


async def test_an_initiative_admin_sees_only_their_organisations_figures(registry: RunningRegistry, town: Town) -> None:
    five = registry.auth(Role.INITIATIVE_ADMIN, tenant=town.tenant, org=town.five)
    body = await _statistics(registry, town.tenant, five)
    assert body["organisation_id"] == town.five
    assert body["needs_by_category"] == {"childcare": {"open": 6, "staffed": None, "unstaffed": None}}
    assert [row["district"] for row in body["needs_by_district"]] == ["Nord", None]
    # Their five volunteers; an erasure keeps no organisation, so erasures are the tenant's only.
    assert body["volunteers"] == {"active": 5, "engaged": None, "withdrawn": None, "erased": None}
    assert await _statistics(registry, town.tenant, five, organisation_id=town.five) == body

    small = registry.auth(Role.INITIATIVE_ADMIN, tenant=town.tenant, org=town.small)
    mine = await _statistics(registry, town.tenant, small)
    assert list(mine["needs_by_category"]) == ["translation"] and mine["volunteers"]["active"] is None
    refused = await registry.http.get(
        f"/tenants/{town.tenant}/statistics", params={"organisation_id": town.five}, headers=small
    )
    assert refused.status_code == 404

    # A coordinator may look at one organisation.
    coordinator = registry.auth(Role.COORDINATOR, tenant=town.tenant)
    assert await _statistics(registry, town.tenant, coordinator, organisation_id=town.five) == body


async def test_another_tenants_tokens_get_no_statistics(registry: RunningRegistry, town: Town) -> None:
    other = await onboard(registry)
    other_org = await add_organisation(registry, other)
    path = f"/tenants/{town.tenant}/statistics"
    for headers in (
        registry.auth(Role.COORDINATOR, tenant=other),
        registry.auth(Role.INITIATIVE_ADMIN, tenant=other, org=town.five),  # our organisation's id, their tenant
        registry.auth(Role.COORDINATOR, Role.INITIATIVE_ADMIN, tenant=other, org=other_org),
    ):
        response = await registry.http.get(path, headers=headers)
        assert response.status_code == 404 and "childcare" not in response.text
    theirs = await _statistics(registry, other, registry.auth(Role.COORDINATOR, tenant=other))
    assert theirs["needs_by_category"] == {} and theirs["needs_by_district"] == []
    assert theirs["volunteers"] == {"active": None, "engaged": None, "withdrawn": None, "erased": None}
    for role in (Role.VOLUNTEER, Role.PARTNER):
        denied = await registry.http.get(path, headers=registry.auth(role, tenant=town.tenant))
        assert denied.status_code == 403, role


def _numbers(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, dict):
        return [n for key, item in value.items() if key != "suppressed_below" for n in _numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    return []
