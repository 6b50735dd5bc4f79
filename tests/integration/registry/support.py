"""Requests and topic reads that several registry tests share."""

from __future__ import annotations

from typing import Any

from lotse_contracts import Envelope, parse_event
from lotse_runtime.auth import Role
from lotse_runtime.sealed import key_encryption_key, open_sealed, sealed_part
from tests.integration.registry.conftest import RunningRegistry
from tests.support.kafka import read_all


def tenant_body(slug: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "slug": slug,
        "name": "Stadt Musterstadt",
        "municipality_key": "11000000",
        "default_language": "de",
        "supported_languages": ["de", "en", "ar"],
        "timezone": "Europe/Berlin",
        "extra_skills": ["bicycle_repair"],
        "coordination_email": "ehrenamt@musterstadt.de",
        "default_search_radius_km": 12,
    }
    body.update(overrides)
    return body


def organisation_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Willkommensinitiative Mitte",
        "kind": "initiative",
        "contact_email": "kontakt@willkommen-mitte.de",
        "districts": ["Mitte"],
    }
    body.update(overrides)
    return body


def volunteer_body(organisation_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "contact": {
            "display_name": "Maria",
            "email": "maria@example.org",
            "phone": "+4915112345678",
            "preferred_language": "de",
            "channels": ["email"],
        },
        "skills": ["driving", "bicycle_repair"],
        "languages": [{"language": "de", "level": "native"}, {"language": "ar", "level": "b2"}],
        "home_area": {"point": {"lat": 52.52, "lon": 13.405}, "postcode": "10115"},
        "travel_radius_km": 10,
        "certificates": [{"kind": "extended_police_certificate", "issued_on": "2026-03-01"}],
        "consent": {"purposes": ["matching", "contact"], "text_version": "2026-01"},
        "availability": {
            "weekly_slots": [{"weekday": "tuesday", "start": "16:00:00", "end": "19:00:00"}],
            "max_concurrent_engagements": 2,
        },
    }
    if organisation_id:
        body["organisation_id"] = organisation_id
    body.update(overrides)
    return body


def need_body(organisation_id: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "organisation_id": organisation_id,
        "category": "accompaniment_to_authorities",
        "description": "Begleitung zur Ausländerbehörde.",
        "required_skills": ["accompaniment"],
        "languages": [{"language": "ar", "min_level": "b2"}],
        "place": {"point": {"lat": 52.5, "lon": 13.4}, "postcode": "10115", "district": "Mitte"},
        "schedule": {"kind": "one_off", "start": "2026-12-03T09:00:00+01:00", "end": "2026-12-03T12:00:00+01:00"},
        "volunteers_needed": 1,
        "household_ref": "hh-7f3k9q2a",
    }
    body.update(overrides)
    return body


async def onboard(registry: RunningRegistry, slug: str | None = None, **overrides: Any) -> str:
    slug = slug or registry.new_tenant()
    body = tenant_body(slug, **overrides)
    response = await registry.http.post("/tenants", json=body, headers=registry.auth(Role.PLATFORM_ADMIN))
    assert response.status_code == 201, response.text
    return slug


async def add_organisation(registry: RunningRegistry, tenant: str, **overrides: Any) -> str:
    response = await registry.http.post(
        f"/tenants/{tenant}/organisations",
        json=organisation_body(**overrides),
        headers=registry.auth(Role.COORDINATOR, tenant=tenant),
    )
    assert response.status_code == 201, response.text
    return response.json()["organisation_id"]


async def tenant_events(
    bootstrap: str, topic: str, tenant: str, *, expected: int, timeout: float = 30.0, settle: float = 0.0
) -> list[Envelope[Any]]:
    """The events of one tenant on a shared topic, in partition order, once ``expected`` arrived
    (then ``settle`` seconds more, to see whether more than expected come)."""
    records = await read_all(
        bootstrap, topic, expected=expected, timeout=timeout, key_prefix=f"{tenant}:".encode(), settle=settle
    )
    return [parse_event(r.value) for r in sorted(records, key=lambda r: (r.partition, r.offset))]


async def opened(registry: RunningRegistry, event: Envelope[Any]) -> Envelope[Any]:
    """A sealed volunteer event opened as matching and notifications open it: with the volunteer's
    key (here from the registry's database), unwrapped with the platform's key."""
    part = sealed_part(event)
    assert part is not None, event.type
    stored = await registry.database.person_keys.find_one({"_id": event.subject})
    assert stored is not None
    key_id = part[1].key_id
    data_key = key_encryption_key(registry.settings.key_encryption_key).unwrap(key_id, stored["wrapped_key"])
    return open_sealed(event, data_key)
