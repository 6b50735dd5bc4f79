"""Postcodes become places, and what the portal reads of a tenant: the postcode table (loaded from
a CSV file, whole or not at all), volunteers placed by their postcode on every way in (HTTP,
partner over HTTP and Kafka), the public tenant facts, and the address search against a stand-in
geocoder on loopback (a partner system outside the platform, not our broker or database)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from lotse_cli.postcodes import PostcodeFileError, read_postcodes
from lotse_contracts import RegisterVolunteer
from lotse_contracts.topics import VOLUNTEERS
from lotse_devstack import Stack
from lotse_registry.app import create_app
from lotse_registry.places import Geocoder, GeocoderUnavailable
from lotse_registry.settings import RegistrySettings
from lotse_runtime.auth import Role
from lotse_runtime.destinations import IPAddress
from lotse_runtime.problems import PROBLEM_JSON
from tests.integration.registry.conftest import RunningRegistry, registry_settings
from tests.integration.registry.support import onboard, opened, tenant_body, tenant_events, volunteer_body
from tests.support.geocoder import StandInGeocoder, feature, photon, serving

pytestmark = pytest.mark.asyncio(loop_scope="module")

TABLE_CSV = """postcode,lat,lon,district
48143,51.9625,7.6270,Mitte
48147,51.9720,7.6180,Kreuzviertel
48151,51.9450,7.6130,Geist
"""


def csv_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"{uuid.uuid4().hex}.csv"
    path.write_text(text, encoding="utf-8")
    return path


async def load_table(registry: RunningRegistry, tenant: str, tmp_path: Path, text: str = TABLE_CSV) -> None:
    rows = read_postcodes(csv_file(tmp_path, text))
    response = await registry.http.put(
        f"/tenants/{tenant}/postcodes",
        json={"postcodes": [row.as_json() for row in rows]},
        headers=registry.auth(Role.COORDINATOR, tenant=tenant),
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"tenant": tenant, "postcodes": len(rows)}


def postcode_only(**overrides: Any) -> dict[str, Any]:
    return volunteer_body(**{"home_area": {"postcode": "48147"}, **overrides})


# --- the postcode table ----------------------------------------------------------------------


async def test_a_postcode_table_is_loaded_and_answers_where_a_postcode_is(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    tenant, other = await onboard(registry), await onboard(registry)
    await load_table(registry, tenant, tmp_path)

    member = registry.auth(Role.VOLUNTEER, tenant=tenant)
    found = await registry.http.get(f"/tenants/{tenant}/postcodes/48147", headers=member)
    assert found.status_code == 200
    assert found.json() == {"postcode": "48147", "point": {"lat": 51.972, "lon": 7.618}, "district": "Kreuzviertel"}
    unknown = await registry.http.get(f"/tenants/{tenant}/postcodes/10115", headers=member)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM_JSON
    # Tables are per tenant: another tenant has none, and its members learn nothing of this one.
    assert (await registry.http.get(f"/tenants/{other}/postcodes/48147", headers=member)).status_code == 404
    outsider = registry.auth(Role.COORDINATOR, tenant=other)
    assert (await registry.http.get(f"/tenants/{tenant}/postcodes/48147", headers=outsider)).status_code == 404

    # A new table replaces the old one; a platform admin may load it too.
    replacement = "postcode;lat;lon;district\n48143;51,9625;7,6270;Innenstadt\n"  # German spreadsheet export
    rows = read_postcodes(csv_file(tmp_path, replacement))
    loaded = await registry.http.put(
        f"/tenants/{tenant}/postcodes",
        json={"postcodes": [row.as_json() for row in rows]},
        headers=registry.auth(Role.PLATFORM_ADMIN),
    )
    assert loaded.status_code == 200 and loaded.json()["postcodes"] == 1
    assert (await registry.http.get(f"/tenants/{tenant}/postcodes/48147", headers=member)).status_code == 404
    moved = await registry.http.get(f"/tenants/{tenant}/postcodes/48143", headers=member)
    assert moved.json()["district"] == "Innenstadt" and moved.json()["point"] == {"lat": 51.9625, "lon": 7.627}


async def test_the_postcode_table_is_public_for_the_portals_map(registry: RunningRegistry, tmp_path: Path) -> None:
    tenant, other = await onboard(registry), await onboard(registry)
    # No token: the table is public like the tenant's facts; a tenant without one answers an empty list.
    assert (await registry.http.get(f"/public/tenants/{tenant}/postcodes")).json() == {"items": []}
    await load_table(registry, tenant, tmp_path)
    listed = await registry.http.get(f"/public/tenants/{tenant}/postcodes")
    assert listed.status_code == 200, listed.text
    assert listed.json() == {
        "items": [
            {"postcode": "48143", "point": {"lat": 51.9625, "lon": 7.627}, "district": "Mitte"},
            {"postcode": "48147", "point": {"lat": 51.972, "lon": 7.618}, "district": "Kreuzviertel"},
            {"postcode": "48151", "point": {"lat": 51.945, "lon": 7.613}, "district": "Geist"},
        ]
    }
    # Per tenant: another tenant's list holds none of these; an unknown tenant is a 404 problem.
    assert (await registry.http.get(f"/public/tenants/{other}/postcodes")).json() == {"items": []}
    unknown = await registry.http.get("/public/tenants/nobody-here/postcodes")
    assert unknown.status_code == 404 and unknown.headers["content-type"] == PROBLEM_JSON


async def test_a_bad_postcode_table_is_refused_by_line_or_row_and_nothing_is_loaded(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    bad = (
        "postcode,lat,lon,district\n"
        "48143,51.9625,7.6270,Mitte\n"
        "48147,north,7.6180,Kreuzviertel\n"
        "4815,51.9450,7.6130,Geist\n"
        "48149,51.9560,7.5990\n"
        "48150,95.0,7.6,Hafen\n"
        "48143,51.9,7.6,Mitte again\n"
        "48152,51.9,7.6,\n"
    )
    with pytest.raises(PostcodeFileError) as refused:
        read_postcodes(csv_file(tmp_path, bad))
    problems = refused.value.problems
    assert [problem.split(":")[0] for problem in problems] == [f"line {n}" for n in (3, 4, 5, 6, 7, 8)]
    assert problems[0] == "line 3: lat: 'north' is not a number"
    assert problems[1].startswith("line 4: postcode:")
    assert problems[3].startswith("line 6: lat:")
    assert problems[4] == "line 7: postcode 48143 is already on line 2"
    assert problems[5] == "line 8: district: missing"
    with pytest.raises(PostcodeFileError, match="columns must be postcode,lat,lon,district"):
        read_postcodes(csv_file(tmp_path, "plz,lat,lon\n48143,51.9,7.6\n"))

    # The route refuses a bad row naming it, and keeps the table it had.
    tenant = await onboard(registry)
    await load_table(registry, tenant, tmp_path)
    coordinator = registry.auth(Role.COORDINATOR, tenant=tenant)
    rows = [
        {"postcode": "48155", "lat": 51.95, "lon": 7.66, "district": "Hafen"},
        {"postcode": "48157", "lat": 151.0, "lon": 7.66, "district": "Nord"},
        {"postcode": "48155", "lat": 51.95, "lon": 7.66, "district": "Hafen"},
    ]
    invalid = await registry.http.put(f"/tenants/{tenant}/postcodes", json={"postcodes": rows}, headers=coordinator)
    assert invalid.status_code == 422 and invalid.headers["content-type"] == PROBLEM_JSON
    assert [error["field"] for error in invalid.json()["errors"]] == ["postcodes[1].lat"]
    twice = await registry.http.put(
        f"/tenants/{tenant}/postcodes", json={"postcodes": [rows[0], rows[2]]}, headers=coordinator
    )
    assert twice.status_code == 422
    assert twice.json()["errors"] == [{"field": "postcodes[1].postcode", "message": "48155 is already in postcodes[0]"}]
    assert await registry.database.postcodes.count_documents({"tenant": tenant}) == 3
    assert await registry.database.postcodes.count_documents({"tenant": tenant, "postcode": "48155"}) == 0

    # Only the tenant's coordinators and platform admins load tables.
    volunteer = registry.auth(Role.VOLUNTEER, tenant=tenant)
    denied = await registry.http.put(f"/tenants/{tenant}/postcodes", json={"postcodes": rows[:1]}, headers=volunteer)
    assert denied.status_code == 403


# --- volunteers placed by their postcode -------------------------------------------------------


async def test_a_volunteer_who_gives_only_a_postcode_is_placed_at_its_centroid(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    tenant = await onboard(registry)
    await load_table(registry, tenant, tmp_path)
    volunteer_id = str(uuid.uuid4())
    volunteer = registry.auth(Role.VOLUNTEER, tenant=tenant, subject=volunteer_id)
    registered = await registry.http.post(f"/tenants/{tenant}/volunteers", json=postcode_only(), headers=volunteer)
    assert registered.status_code == 201, registered.text
    placed = {"point": {"lat": 51.972, "lon": 7.618}, "postcode": "48147"}
    assert registered.json()["home_area"] == placed
    stored = await registry.database.volunteers.find_one({"tenant": tenant, "_id": volunteer_id})
    assert stored is not None and stored["home_area"] == placed
    # Matching learns the point from the event.
    events = await tenant_events(registry.settings.kafka_bootstrap, VOLUNTEERS.name, tenant, expected=1)
    home_area = (await opened(registry, events[0])).data.home_area  # sealed on the topic (issue 18)
    assert home_area.point is not None and home_area.point.lat == 51.972

    # A profile update with another postcode alone moves the volunteer there.
    profile = {k: v for k, v in postcode_only(home_area={"postcode": "48151"}).items() if k in PROFILE_KEYS}
    updated = await registry.http.put(
        f"/tenants/{tenant}/volunteers/{volunteer_id}/profile", json=profile, headers=volunteer
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["home_area"] == {"point": {"lat": 51.945, "lon": 7.613}, "postcode": "48151"}


PROFILE_KEYS = {"contact", "skills", "languages", "home_area", "travel_radius_km", "certificates"}


async def test_an_unknown_postcode_is_refused_naming_the_field_on_every_way_in(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    tenant = await onboard(registry)
    await load_table(registry, tenant, tmp_path)
    unknown = postcode_only(home_area={"postcode": "10115"})

    def refused_for_the_postcode(response: httpx.Response) -> bool:
        body = response.json()
        return (
            response.status_code == 422
            and response.headers["content-type"] == PROBLEM_JSON
            and body["detail"] == f"postcode not known in {tenant}"
            and body["errors"] == [{"field": "home_area.postcode", "message": f"postcode not known in {tenant}"}]
        )

    volunteer_id = str(uuid.uuid4())
    volunteer = registry.auth(Role.VOLUNTEER, tenant=tenant, subject=volunteer_id)
    assert refused_for_the_postcode(
        await registry.http.post(f"/tenants/{tenant}/volunteers", json=unknown, headers=volunteer)
    )
    coordinator = registry.auth(Role.COORDINATOR, tenant=tenant)
    assert refused_for_the_postcode(
        await registry.http.post(f"/tenants/{tenant}/volunteers", json=unknown, headers=coordinator)
    )
    partner = registry.auth(Role.PARTNER, tenant=tenant, subject="volunteer-portal")
    command = {**partner_registration(unknown, "vol-http-1").model_dump(mode="json")}
    assert refused_for_the_postcode(
        await registry.http.post(f"/tenants/{tenant}/partner/volunteers/register", json=command, headers=partner)
    )
    assert await registry.database.volunteers.count_documents({"tenant": tenant}) == 0

    # With a known postcode the volunteer registers; a profile update to an unknown one is refused.
    registered = await registry.http.post(f"/tenants/{tenant}/volunteers", json=postcode_only(), headers=volunteer)
    assert registered.status_code == 201
    profile = {k: v for k, v in unknown.items() if k in PROFILE_KEYS}
    assert refused_for_the_postcode(
        await registry.http.put(f"/tenants/{tenant}/volunteers/{volunteer_id}/profile", json=profile, headers=volunteer)
    )
    stored = await registry.database.volunteers.find_one({"tenant": tenant, "_id": volunteer_id})
    assert stored is not None and stored["home_area"]["postcode"] == "48147" and stored["version"] == 1


def partner_registration(body: dict[str, Any], external_ref: str) -> RegisterVolunteer:
    return RegisterVolunteer.model_validate(
        {
            **{k: v for k, v in body.items() if k != "consent"},
            "external_ref": external_ref,
            "consent": {"purposes": ["matching"], "text_version": "2026-01", "given_at": "2026-11-20T09:30:00+01:00"},
            "consent_proof": {"method": "online_form", "reference": "forms/1", "recorded_at": "2026-11-20T09:31:00Z"},
        }
    )


async def test_a_partner_registration_is_placed_by_the_postcode_table(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    """Over HTTPS, the only way a partner registers a volunteer (the inbound topic refuses it): a
    known postcode alone places the volunteer, an unknown one is refused with the reason."""
    tenant = await onboard(registry)
    await load_table(registry, tenant, tmp_path)
    partner = registry.auth(Role.PARTNER, tenant=tenant, subject="portal")
    path = f"/tenants/{tenant}/partner/volunteers/register"

    unknown = partner_registration(postcode_only(home_area={"postcode": "10115"}), "vol-unknown")
    refused = await registry.http.post(path, json=unknown.model_dump(mode="json"), headers=partner)
    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"field": "home_area.postcode", "message": f"postcode not known in {tenant}"}]
    known = partner_registration(postcode_only(), "vol-known")
    registered = await registry.http.post(path, json=known.model_dump(mode="json"), headers=partner)
    assert registered.status_code == 201, registered.text

    volunteer = await registry.database.volunteers.find_one({"tenant": tenant})
    assert volunteer is not None and volunteer["_id"] == registered.json()["volunteer_id"]
    assert volunteer["home_area"] == {"point": {"lat": 51.972, "lon": 7.618}, "postcode": "48147"}
    assert await registry.database.volunteers.count_documents({"tenant": tenant}) == 1


# --- public tenant facts for the portal -------------------------------------------------------

PRIVATE_FIELDS = ("coordination_email", "coordination_phone", "municipality_key", "default_search_radius_km")


async def test_public_tenant_facts_need_no_token_and_show_nothing_private(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    tenant = await onboard(registry)
    listing = await registry.http.get("/public/tenants")
    assert listing.status_code == 200
    listed = next(item for item in listing.json()["items"] if item["slug"] == tenant)
    assert listed == {
        "slug": tenant,
        "name": "Stadt Musterstadt",
        "default_language": "de",
        "languages": ["de", "en", "ar"],
    }

    details = await registry.http.get(f"/public/tenants/{tenant}")
    assert details.status_code == 200
    facts = details.json()
    consent = facts["consent"]
    assert consent["version"] == "lotse-default-1" and set(consent["texts"]) == {"de", "en", "ar"}
    for text in consent["texts"].values():
        assert set(text["purposes"]) == {"matching", "contact", "share_with_organisation", "statistics"}
    assert consent["texts"]["de"]["purposes"]["matching"].startswith("Vorschläge:")
    assert consent["texts"]["en"]["purposes"]["matching"].startswith("Suggestions:")
    skills = {skill["slug"]: skill["labels"] for skill in facts["skills"]}
    assert skills["driving"] == {"de": "Fahrdienste", "en": "Driving", "ar": "خدمات التوصيل بالسيارة"}
    assert skills["bicycle_repair"]["de"] == "bicycle repair"  # the tenant's own skill, not labelled yet
    assert (facts["map_offered"], facts["address_search"]) == (False, False)  # no postcode table yet

    # Private facts of the tenant appear nowhere, neither as fields nor as values.
    for answer in (listing, details):
        assert not any(name in answer.text for name in PRIVATE_FIELDS)
        assert tenant_body(tenant)["coordination_email"] not in answer.text
        assert tenant_body(tenant)["municipality_key"] not in answer.text

    await load_table(registry, tenant, tmp_path)
    assert (await registry.http.get(f"/public/tenants/{tenant}")).json()["map_offered"] is True
    assert (await registry.http.get("/public/tenants/nobody-here")).status_code == 404


async def test_a_coordinator_sets_the_consent_text_and_skill_labels_the_portal_shows(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    tenant = await onboard(registry)
    await load_table(registry, tenant, tmp_path)
    purposes = {
        purpose: f"Zweck {purpose}" for purpose in ("matching", "contact", "share_with_organisation", "statistics")
    }
    german = {"intro": "Einwilligung", "purposes": purposes}
    settings: dict[str, Any] = {
        "consent": {"version": "musterstadt-2027", "texts": {"de": german}},
        "offer_map": False,
        "skill_labels": {"bicycle_repair": {"de": "Fahrradreparatur", "en": "Bicycle repair"}},
    }
    coordinator = registry.auth(Role.COORDINATOR, tenant=tenant)
    saved = await registry.http.put(f"/tenants/{tenant}/portal", json=settings, headers=coordinator)
    assert saved.status_code == 200, saved.text
    facts = (await registry.http.get(f"/public/tenants/{tenant}")).json()
    assert facts["consent"] == {
        "version": "musterstadt-2027",
        "texts": {"de": {"intro": "Einwilligung", "purposes": purposes}},
    }
    labels = {skill["slug"]: skill["labels"] for skill in facts["skills"]}
    assert labels["bicycle_repair"] == {"de": "Fahrradreparatur", "en": "Bicycle repair", "ar": "Fahrradreparatur"}
    assert facts["map_offered"] is False  # the tenant does not want one, though it has a table

    # The default language's text is required, every purpose described, and only catalogue skills.
    english_only = {**settings, "consent": {"version": "musterstadt-2027", "texts": {"en": german}}}
    missing = await registry.http.put(f"/tenants/{tenant}/portal", json=english_only, headers=coordinator)
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "consent.texts"
    unknown_skill = {**settings, "skill_labels": {"juggling": {"de": "Jonglieren"}}}
    refused = await registry.http.put(f"/tenants/{tenant}/portal", json=unknown_skill, headers=coordinator)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "skill_labels.juggling"
    partial = {"consent": {"version": "v2", "texts": {"de": {"intro": "x", "purposes": {"matching": "y"}}}}}
    assert (await registry.http.put(f"/tenants/{tenant}/portal", json=partial, headers=coordinator)).status_code == 422
    volunteer = registry.auth(Role.VOLUNTEER, tenant=tenant)
    assert (await registry.http.put(f"/tenants/{tenant}/portal", json=settings, headers=volunteer)).status_code == 403
    assert (await registry.http.get(f"/public/tenants/{tenant}")).json()["consent"]["version"] == "musterstadt-2027"


# --- the address search against a stand-in geocoder ------------------------------------------

# A Photon on loopback (tests/support/geocoder.py): a partner system outside the platform.
PHOTON_ANSWER = photon(
    [
        feature(
            51.9614,
            7.6251,
            name="Rathaus",
            street="Prinzipalmarkt",
            housenumber="10",
            postcode="48143",
            city="Musterstadt",
            district="Mitte",
        )
    ]
)


@pytest.fixture
def stand_in() -> Iterator[tuple[StandInGeocoder, int]]:
    with serving(StandInGeocoder(answer=PHOTON_ANSWER)) as running:
        yield running


@asynccontextmanager
async def registry_with_geocoder(settings: RegistrySettings) -> AsyncIterator[httpx.AsyncClient]:
    """A second registry app on the same database, with a geocoder (no consumers, no relay)."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://r") as http:
        yield http


async def test_the_address_search_asks_the_geocoder_and_answers_candidate_points(
    registry: RunningRegistry, stack: Stack, stand_in: tuple[StandInGeocoder, int]
) -> None:
    geocoder, port = stand_in
    tenant = await onboard(registry)
    member = registry.auth(Role.INITIATIVE_ADMIN, tenant=tenant, org=str(uuid.uuid4()))
    # The test registry has no geocoder: the search is not offered.
    assert (
        await registry.http.get(f"/tenants/{tenant}/places", params={"q": "Prinzipalmarkt"}, headers=member)
    ).status_code == 404

    settings = registry_settings(
        stack, registry.prefix, geocoder_url=f"http://127.0.0.1:{port}/api", run_consumers=False, run_relay=False
    )
    async with registry_with_geocoder(settings) as http:
        found = await http.get(f"/tenants/{tenant}/places", params={"q": "Prinzipalmarkt 10"}, headers=member)
        assert found.status_code == 200, found.text
        assert found.json() == {
            "items": [
                {
                    "label": "Rathaus, Prinzipalmarkt 10, 48143 Musterstadt",
                    "point": {"lat": 51.9614, "lon": 7.6251},
                    "postcode": "48143",
                    "district": "Mitte",
                }
            ]
        }
        assert geocoder.queries == [{"q": ["Prinzipalmarkt 10"], "limit": ["5"]}]
        assert (await http.get(f"/public/tenants/{tenant}")).json()["address_search"] is True
        outsider = registry.auth(Role.COORDINATOR, tenant=await onboard(registry))
        assert (
            await http.get(f"/tenants/{tenant}/places", params={"q": "Prinzipalmarkt"}, headers=outsider)
        ).status_code == 404

        # A geocoder that fails, or answers more than the registry reads, is a 502, not a 500.
        geocoder.status = 500
        failed = await http.get(f"/tenants/{tenant}/places", params={"q": "Prinzipalmarkt"}, headers=member)
        assert failed.status_code == 502 and failed.headers["content-type"] == PROBLEM_JSON
        geocoder.status, geocoder.answer = (
            200,
            b"[" + b'{"lat": "51.9", "lon": "7.6", "display_name": "x"},' * 20_000 + b"{}]",
        )
        too_large = await http.get(f"/tenants/{tenant}/places", params={"q": "Prinzipalmarkt"}, headers=member)
        assert too_large.status_code == 502


async def test_only_those_who_report_needs_search_addresses_and_each_only_so_often(
    registry: RunningRegistry, stack: Stack, stand_in: tuple[StandInGeocoder, int]
) -> None:
    """The geocoder is outside the platform and gets every address searched: a volunteer may
    not search (403), and a coordinator or initiative admin only up to the limit (429 with
    Retry-After beyond), counted per caller, so one caller's searches leave another's alone."""
    geocoder, port = stand_in
    tenant = await onboard(registry)
    settings = registry_settings(
        stack,
        registry.prefix,
        geocoder_url=f"http://127.0.0.1:{port}/api",
        geocoder_rate_limit="3/minute",
        run_consumers=False,
        run_relay=False,
    )
    path, query = f"/tenants/{tenant}/places", {"q": "Prinzipalmarkt 10"}
    async with registry_with_geocoder(settings) as http:
        volunteer = registry.auth(Role.VOLUNTEER, tenant=tenant)
        refused = await http.get(path, params=query, headers=volunteer)
        assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM_JSON
        assert geocoder.queries == []  # nothing reached the geocoder

        jana = str(uuid.uuid4())
        office = registry.auth(Role.COORDINATOR, tenant=tenant, subject=jana)
        assert [(await http.get(path, params=query, headers=office)).status_code for _ in range(3)] == [200] * 3
        limited = await http.get(path, params=query, headers=office)
        assert limited.status_code == 429 and limited.headers["content-type"] == PROBLEM_JSON
        assert int(limited.headers["Retry-After"]) >= 1
        assert len(geocoder.queries) == 3  # the refused search never left the registry
        # A fresh token of the same person counts as the same caller.
        again = registry.auth(Role.COORDINATOR, tenant=tenant, subject=jana)
        assert (await http.get(path, params=query, headers=again)).status_code == 429
        # Another caller has their own allowance.
        admin = registry.auth(Role.INITIATIVE_ADMIN, tenant=tenant, org=str(uuid.uuid4()))
        assert (await http.get(path, params=query, headers=admin)).status_code == 200


@pytest.mark.parametrize(
    "url", ["https://10.1.2.3/api", "http://127.0.0.1:2322/api", "https://geocoder.internal/api", "https://[::1]/api"]
)
async def test_a_geocoder_inside_the_network_is_refused_at_start_in_production(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        RegistrySettings(env="production", geocoder_url=url)
    assert [error["loc"] for error in refused.value.errors()] == [("geocoder_url",)]
    assert RegistrySettings(env="development", geocoder_url="http://127.0.0.1:2322/api").geocoder_url is not None


async def test_a_geocoder_name_that_resolves_inside_is_never_connected_in_production(
    stand_in: tuple[StandInGeocoder, int],
) -> None:
    """The URL passed the check at start, but its name now resolves to loopback (DNS rebinding)."""
    geocoder, port = stand_in

    async def to_loopback(host: str, port: int) -> list[IPAddress]:
        return [ip_address("127.0.0.1")]

    client = Geocoder(f"https://geocoder.example:{port}/api", "production", to_loopback, timeout=2.0)
    try:
        with pytest.raises(GeocoderUnavailable, match="destination not allowed"):
            await client.search("Prinzipalmarkt 10")
    finally:
        await client.close()
    assert geocoder.connections == 0
