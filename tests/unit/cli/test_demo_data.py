"""The demo's data is valid, deterministic, and has the shape the scenario relies on."""

from __future__ import annotations

import uuid
from datetime import date

from lotse_cli.demo_data import DEMO_TENANTS, demo_needs, demo_volunteers, unfittable_need
from lotse_contracts.events.values import OneOffWindow

TODAY = date(2026, 11, 25)
ORGS = [str(uuid.UUID(int=i)) for i in range(1, 4)]


def test_the_two_municipalities_coordinate_differently() -> None:
    kinds = {tenant.slug: {o.kind for o in tenant.organisations} for tenant in DEMO_TENANTS}
    assert "coordination_office" in kinds["musterstadt"]
    assert "round_table" in kinds["lindenau"] and "coordination_office" not in kinds["lindenau"]


def test_volunteers_and_needs_are_deterministic_and_unique() -> None:
    tenant = DEMO_TENANTS[0]
    first = demo_volunteers(tenant, 200, ORGS, TODAY)
    assert first == demo_volunteers(tenant, 200, ORGS, TODAY)
    assert len({v.external_ref for v in first}) == 200
    assert len({v.contact.email for v in first}) == 200
    needs = demo_needs(tenant, 30, ORGS, TODAY)
    assert needs == demo_needs(tenant, 30, ORGS, TODAY)
    assert all(isinstance(need.schedule, OneOffWindow) and need.schedule.start.date() > TODAY for need in needs)


def test_nobody_in_the_demo_speaks_the_language_of_the_unfittable_need() -> None:
    for tenant in DEMO_TENANTS:
        need = unfittable_need(tenant, ORGS, TODAY)
        required = {requirement.language for requirement in need.languages}
        spoken = {skill.language for v in demo_volunteers(tenant, 300, ORGS, TODAY) for skill in v.languages}
        assert required and not required & spoken
