"""The registry's audit trail on the running registry: every write route records who changed
which fields of what (never the values), reads of contact data are recorded, and only the
tenant's data-protection officer searches and exports the trail."""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from lotse_runtime.audit import AUDIT_COLLECTION
from lotse_runtime.auth import Role
from tests.integration.registry.conftest import RunningRegistry
from tests.integration.registry.support import (
    add_organisation,
    need_body,
    onboard,
    organisation_body,
    tenant_body,
    volunteer_body,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
CHECK_BODY = {"kind": "first_aid", "seen_on": "2026-11-20", "valid_until": "2099-11-19"}
STAFF_BODY = {"name": "Jana Weber", "email": "j.weber@musterstadt.de", "phone": "+4930987654"}
# Personal values the bodies below carry: none of them may appear in the trail.
VALUES = ["maria@example.org", "+4915112345678", "Maria", "10115", "j.weber@musterstadt.de", "Jana Weber"]
# The partners' case references (a refugee household's, a volunteer's in the partner's system).
CASE_REFS = ["case-2026-00042", "case-2026-00077"]


@dataclass
class Caller:
    subject: str
    headers: dict[str, str]


@dataclass
class Written:
    """What the tour did: the write routes it called, by whom, in which tenant."""

    tenant: str
    calls: dict[str, tuple[str, str]]  # "METHOD /template" -> (actor subject, tenant)
    coordinator: Caller
    officer: Caller
    contact_reader: Caller
    read_volunteer: str
    contact_person: str


def as_caller(registry: RunningRegistry, *roles: Role, tenant: str | None, **claims: Any) -> Caller:
    subject = claims.pop("subject", None) or str(uuid.uuid4())
    return Caller(subject, registry.auth(*roles, tenant=tenant, subject=subject, **claims))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def written(registry: RunningRegistry) -> Written:
    """Call every write route of the registry once (and read a volunteer's contact data)."""
    http = registry.http
    calls: dict[str, tuple[str, str]] = {}
    admin = as_caller(registry, Role.PLATFORM_ADMIN, tenant=None)
    tenant = registry.new_tenant()
    coordinator = as_caller(registry, Role.COORDINATOR, tenant=tenant)
    partner = as_caller(registry, Role.PARTNER, tenant=tenant, subject="case-management")
    volunteer_id = str(uuid.uuid4())
    volunteer = as_caller(registry, Role.VOLUNTEER, tenant=tenant, subject=volunteer_id)

    async def call(
        who: Caller, method: str, template: str, path: str, body: Any = None, *, in_tenant: str | None = None
    ) -> httpx.Response:
        response = await http.request(method, path, json=body, headers=who.headers)
        assert response.is_success, f"{method} {path}: {response.text}"
        calls[f"{method} {template}"] = (who.subject, in_tenant or tenant)
        return response

    t = f"/tenants/{tenant}"
    await call(admin, "POST", "/tenants", "/tenants", tenant_body(tenant))
    postcodes = {"postcodes": [{"postcode": "10115", "lat": 52.53, "lon": 13.38, "district": "Mitte"}]}
    await call(coordinator, "PUT", "/tenants/{tenant}/postcodes", f"{t}/postcodes", postcodes)
    await call(coordinator, "PUT", "/tenants/{tenant}/portal", f"{t}/portal", {"offer_map": False})
    org = (
        await call(coordinator, "POST", "/tenants/{tenant}/organisations", f"{t}/organisations", organisation_body())
    ).json()["organisation_id"]
    await call(
        coordinator,
        "PUT",
        "/tenants/{tenant}/organisations/{organisation_id}",
        f"{t}/organisations/{org}",
        organisation_body(name="Willkommen Mitte e.V."),
    )
    await call(volunteer, "POST", "/tenants/{tenant}/volunteers", f"{t}/volunteers", volunteer_body())
    v = f"{t}/volunteers/{volunteer_id}"
    profile = {k: val for k, val in volunteer_body().items() if k not in {"consent", "availability", "organisation_id"}}
    await call(volunteer, "PUT", "/tenants/{tenant}/volunteers/{volunteer_id}/profile", f"{v}/profile", profile)
    availability = volunteer_body()["availability"]
    await call(
        volunteer, "PUT", "/tenants/{tenant}/volunteers/{volunteer_id}/availability", f"{v}/availability", availability
    )
    check = (
        await call(
            coordinator,
            "POST",
            "/tenants/{tenant}/volunteers/{volunteer_id}/certificate-checks",
            f"{v}/certificate-checks",
            CHECK_BODY,
        )
    ).json()["certificate_checks"][0]["check_id"]
    await call(
        coordinator,
        "POST",
        "/tenants/{tenant}/volunteers/{volunteer_id}/certificate-checks/{check_id}/revocation",
        f"{v}/certificate-checks/{check}/revocation",
        {},
    )
    staff_id = (await call(coordinator, "PUT", "/tenants/{tenant}/staff/me", f"{t}/staff/me", STAFF_BODY)).json()[
        "staff_id"
    ]
    await call(
        coordinator,
        "PUT",
        "/tenants/{tenant}/volunteers/{volunteer_id}/contact-person",
        f"{v}/contact-person",
        {"staff_id": staff_id},
    )
    # A coordinator reads the volunteer's contact data (registered directly with the municipality).
    contact_reader = as_caller(registry, Role.COORDINATOR, tenant=tenant)
    read = await http.get(v, headers=contact_reader.headers)
    assert read.status_code == 200 and read.json()["contact"]["email"] == "maria@example.org"
    # The volunteer reading their own data is no disclosure (not recorded).
    assert (await http.get(v, headers=volunteer.headers)).status_code == 200
    leaving = as_caller(registry, Role.COORDINATOR, tenant=tenant)
    leaving_id = (await http.put(f"{t}/staff/me", json=STAFF_BODY, headers=leaving.headers)).json()["staff_id"]
    await call(coordinator, "DELETE", "/tenants/{tenant}/staff/{staff_id}", f"{t}/staff/{leaving_id}")
    await call(volunteer, "POST", "/tenants/{tenant}/volunteers/{volunteer_id}/withdrawal", f"{v}/withdrawal", {})
    await call(volunteer, "POST", "/tenants/{tenant}/volunteers/{volunteer_id}/erasure", f"{v}/erasure")

    needs = [
        (await call(coordinator, "POST", "/tenants/{tenant}/needs", f"{t}/needs", need_body(org))).json()["need_id"]
        for _ in range(2)
    ]
    await call(coordinator, "PUT", "/tenants/{tenant}/needs/{need_id}", f"{t}/needs/{needs[0]}", need_body(org))
    await call(
        coordinator,
        "POST",
        "/tenants/{tenant}/needs/{need_id}/cancellation",
        f"{t}/needs/{needs[0]}/cancellation",
        {"reason": "duplicate"},
    )
    await call(
        coordinator,
        "POST",
        "/tenants/{tenant}/needs/{need_id}/closing",
        f"{t}/needs/{needs[1]}/closing",
        {"outcome": "fulfilled"},
    )
    partner_need = {**need_body(org), "external_ref": "case-2026-00077"}
    await call(partner, "POST", "/tenants/{tenant}/partner/needs/report", f"{t}/partner/needs/report", partner_need)
    await call(
        partner,
        "POST",
        "/tenants/{tenant}/partner/needs/update",
        f"{t}/partner/needs/update",
        {**partner_need, "volunteers_needed": 2},
    )
    await call(
        partner,
        "POST",
        "/tenants/{tenant}/partner/needs/cancel",
        f"{t}/partner/needs/cancel",
        {"external_ref": "case-2026-00077", "reason": "duplicate"},
    )
    by_partner = {k: val for k, val in volunteer_body(org).items() if k != "consent"}
    by_partner.update(
        external_ref="case-2026-00042",
        consent={"purposes": ["matching"], "text_version": "2026-01", "given_at": "2026-11-20T09:30:00+01:00"},
        consent_proof={"method": "signed_form", "reference": "forms/1", "recorded_at": "2026-11-20T09:31:00+01:00"},
    )
    await call(
        partner, "POST", "/tenants/{tenant}/partner/volunteers/register", f"{t}/partner/volunteers/register", by_partner
    )
    officer = as_caller(registry, Role.DATA_PROTECTION_OFFICER, tenant=tenant)
    return Written(tenant, calls, coordinator, officer, contact_reader, volunteer_id, staff_id)


def write_routes(registry: RunningRegistry) -> set[str]:
    """Every write route the registry offers, from its OpenAPI document."""
    paths: dict[str, dict[str, Any]] = registry.app.openapi()["paths"]
    return {
        f"{method.upper()} {path}" for path, item in paths.items() for method in item if method.upper() in WRITE_METHODS
    }


async def trail(registry: RunningRegistry, tenant: str) -> list[dict[str, Any]]:
    return await registry.database[AUDIT_COLLECTION].find({"tenant": tenant}).to_list()


async def test_every_write_route_records_who_changed_which_fields_and_never_the_values(
    registry: RunningRegistry, written: Written
) -> None:
    # The tour calls every write route there is: a new route fails here until it is added.
    assert set(written.calls) == write_routes(registry)
    entries = await trail(registry, written.tenant)
    assert entries
    for action, (actor, _) in written.calls.items():
        recorded = [entry for entry in entries if entry["action"] == action and entry["operation"] != "read"]
        assert recorded, f"{action} left no audit entry"
        assert actor in {entry["actor"] for entry in recorded}, action
    for entry in entries:
        assert not any(value in json.dumps(entry, default=str) for value in VALUES), entry
    # One example in full: the profile change names the fields it wrote.
    (profile,) = [
        entry
        for entry in entries
        if entry["action"] == "PUT /tenants/{tenant}/volunteers/{volunteer_id}/profile"
        and entry["resource_type"] == "volunteers"
    ]
    assert profile["operation"] == "update" and profile["resource_id"] == written.read_volunteer
    assert {"contact", "home_area", "skills"} <= set(profile["fields"])
    assert profile["roles"] == ["volunteer"]


async def test_no_partner_case_reference_reaches_the_trail(registry: RunningRegistry, written: Written) -> None:
    # The partner references are recorded by the volunteer or need they point to.
    entries = await trail(registry, written.tenant)
    refs = [entry for entry in entries if entry["resource_type"] == "partner_refs"]
    assert refs and all(entry["resource_id"] == entry["subject_id"] for entry in refs)
    for entry in entries:
        assert not any(ref in json.dumps(entry, default=str) for ref in CASE_REFS), entry


async def test_the_writes_about_a_volunteer_are_found_by_their_id(registry: RunningRegistry, written: Written) -> None:
    volunteer = written.read_volunteer
    response = await registry.http.get(
        f"/tenants/{written.tenant}/audit", params={"subject": volunteer, "limit": 200}, headers=written.officer.headers
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert {item["subject_id"] for item in items} == {volunteer}
    found = {(item["resource_type"], item["operation"]) for item in items}
    # Their consent, certificate checks (filed under the check's id) and the erasure's deletions.
    assert {
        ("consents", "create"),
        ("consents", "update"),
        ("consents", "delete"),
        ("certificate_checks", "create"),
        ("certificate_checks", "update"),
        ("certificate_checks", "delete"),
        ("volunteers", "update"),
        ("volunteers", "read"),
    } <= found, found
    # The resource search by the bare id finds them too.
    by_resource = await registry.http.get(
        f"/tenants/{written.tenant}/audit",
        params={"resource": volunteer, "limit": 200},
        headers=written.officer.headers,
    )
    assert {item["id"] for item in items} <= {item["id"] for item in by_resource.json()["items"]}


async def test_a_read_of_contact_data_is_recorded_with_the_fields_received(
    registry: RunningRegistry, written: Written
) -> None:
    reads = [entry for entry in await trail(registry, written.tenant) if entry["operation"] == "read"]
    by_reader = {
        (e["resource_type"], e["resource_id"]): e for e in reads if e["actor"] == written.contact_reader.subject
    }
    volunteer = by_reader[("volunteers", written.read_volunteer)]
    assert set(volunteer["fields"]) == {"contact.email", "contact.phone", "home_area"}
    assert volunteer["action"] == "GET /tenants/{tenant}/volunteers/{volunteer_id}"
    staff = by_reader[("staff", f"{written.tenant}:{written.contact_person}")]
    assert set(staff["fields"]) == {"name", "email", "phone"}
    # The volunteer reading their own data is no disclosure: not recorded (their contact person's is).
    own = [entry for entry in reads if entry["actor"] == written.read_volunteer]
    assert [entry["resource_type"] for entry in own] == ["staff"]


async def test_the_officer_searches_the_trail_by_actor_resource_and_time_and_pages_it(
    registry: RunningRegistry, written: Written
) -> None:
    base = f"/tenants/{written.tenant}/audit"
    officer = written.officer.headers
    by_actor = await registry.http.get(base, params={"actor": written.contact_reader.subject}, headers=officer)
    assert by_actor.status_code == 200, by_actor.text
    assert {item["operation"] for item in by_actor.json()["items"]} == {"read"}
    by_resource = await registry.http.get(
        base, params={"resource": f"volunteers/{written.read_volunteer}"}, headers=officer
    )
    assert {item["resource_id"] for item in by_resource.json()["items"]} == {written.read_volunteer}
    first = (await registry.http.get(base, params={"limit": 5}, headers=officer)).json()
    second = (
        await registry.http.get(base, params={"limit": 5, "cursor": first["next_cursor"]}, headers=officer)
    ).json()
    assert len(first["items"]) == 5 and second["items"]
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}
    assert first["items"][0]["at"] >= first["items"][-1]["at"] >= second["items"][0]["at"]  # newest first
    future = await registry.http.get(base, params={"from": "2999-01-01T00:00:00Z"}, headers=officer)
    assert future.json()["items"] == []
    bad = await registry.http.get(base, params={"from": "yesterday"}, headers=officer)
    assert bad.status_code == 422 and "from" in bad.text
    impossible = await registry.http.get(base, params={"to": "2026-02-30"}, headers=officer)
    assert impossible.status_code == 422 and impossible.json()["errors"][0]["field"] == "query.to"
    days = await registry.http.get(
        base, params={"from": "2000-01-01", "to": "2999-01-01", "limit": 200}, headers=officer
    )
    everything = await registry.http.get(base, params={"limit": 200}, headers=officer)
    assert days.json()["items"] == everything.json()["items"]
    foreign = await registry.http.get(base, params={"cursor": "nonsense"}, headers=officer)
    assert foreign.status_code == 422 and foreign.json()["errors"][0]["field"] == "query.cursor"


async def test_the_export_as_csv_and_json_holds_the_same_entries(registry: RunningRegistry, written: Written) -> None:
    base = f"/tenants/{written.tenant}/audit"
    params = {"resource": "volunteers"}
    as_json = await registry.http.get(f"{base}.json", params=params, headers=written.officer.headers)
    assert as_json.status_code == 200 and as_json.headers["content-type"].startswith("application/json")
    assert "attachment" in as_json.headers["content-disposition"]
    entries = as_json.json()
    assert entries and {entry["resource_type"] for entry in entries} == {"volunteers"}
    as_csv = await registry.http.get(f"{base}.csv", params=params, headers=written.officer.headers)
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [row["resource_id"] for row in rows] == [entry["resource_id"] for entry in entries]
    assert [row["fields"] for row in rows] == [" ".join(entry["fields"]) for entry in entries]


async def test_only_the_tenants_officer_reads_the_trail_and_the_officer_nothing_else(
    registry: RunningRegistry, written: Written
) -> None:
    tenant = written.tenant
    other = await onboard(registry)
    refused: dict[str, tuple[dict[str, str], int]] = {
        "coordinator": (written.coordinator.headers, 403),
        "volunteer": (registry.auth(Role.VOLUNTEER, tenant=tenant), 403),
        "initiative admin": (registry.auth(Role.INITIATIVE_ADMIN, tenant=tenant, org="org-1"), 403),
        "platform admin": (registry.auth(Role.PLATFORM_ADMIN), 404),
        "another tenant's officer": (registry.auth(Role.DATA_PROTECTION_OFFICER, tenant=other), 404),
    }
    for path in ("audit", "audit.csv", "audit.json"):
        for who, (headers, status) in refused.items():
            response = await registry.http.get(f"/tenants/{tenant}/{path}", headers=headers)
            assert response.status_code == status, f"{who} {path}: {response.status_code}"
    # The officer gets nothing the trail does not hold: no volunteers, no needs, no tenant settings.
    officer = written.officer.headers
    for path in ("volunteers", f"volunteers/{written.read_volunteer}", "needs", "organisations", "staff", ""):
        response = await registry.http.get(f"/tenants/{tenant}/{path}".rstrip("/"), headers=officer)
        assert response.status_code == 403, f"{path}: {response.status_code}"


async def test_an_organisation_admin_listing_contact_details_is_recorded_per_volunteer(
    registry: RunningRegistry,
) -> None:
    tenant = await onboard(registry)
    org = await add_organisation(registry, tenant)
    ids = []
    for _ in range(2):
        volunteer_id = str(uuid.uuid4())
        headers = registry.auth(Role.VOLUNTEER, tenant=tenant, subject=volunteer_id)
        assert (
            await registry.http.post(f"/tenants/{tenant}/volunteers", json=volunteer_body(org), headers=headers)
        ).is_success
        ids.append(volunteer_id)
    admin = as_caller(registry, Role.INITIATIVE_ADMIN, tenant=tenant, org=org)
    plain = await registry.http.get(f"/tenants/{tenant}/volunteers", headers=admin.headers)
    assert plain.status_code == 200
    reads = {"actor": admin.subject, "operation": "read"}
    assert await registry.database[AUDIT_COLLECTION].count_documents({"tenant": tenant, **reads}) == 0
    listed = await registry.http.get(
        f"/tenants/{tenant}/volunteers", params={"with_contact": "true"}, headers=admin.headers
    )
    assert listed.status_code == 200
    recorded = await registry.database[AUDIT_COLLECTION].find({"tenant": tenant, **reads}).to_list()
    assert sorted(entry["resource_id"] for entry in recorded) == sorted(ids)
    assert all(set(entry["fields"]) == {"contact.email", "contact.phone"} for entry in recorded)


async def test_contact_data_in_write_answers_and_the_staff_list_is_recorded(registry: RunningRegistry) -> None:
    tenant = await onboard(registry)
    audit = registry.database[AUDIT_COLLECTION]
    coordinator = as_caller(registry, Role.COORDINATOR, tenant=tenant)
    # The office registers a volunteer and edits the profile: both answers carry the contact data.
    registered = await registry.http.post(
        f"/tenants/{tenant}/volunteers", json=volunteer_body(), headers=coordinator.headers
    )
    assert registered.status_code == 201, registered.text
    volunteer_id = registered.json()["volunteer_id"]
    profile = {k: val for k, val in volunteer_body().items() if k not in {"consent", "availability", "organisation_id"}}
    edited = await registry.http.put(
        f"/tenants/{tenant}/volunteers/{volunteer_id}/profile", json=profile, headers=coordinator.headers
    )
    assert edited.status_code == 200, edited.text
    reads = await audit.find({"tenant": tenant, "actor": coordinator.subject, "operation": "read"}).to_list()
    assert sorted(entry["action"].split(" ")[0] for entry in reads) == ["POST", "PUT"]
    for entry in reads:
        assert entry["resource_id"] == entry["subject_id"] == volunteer_id
        assert set(entry["fields"]) == {"contact.email", "contact.phone", "home_area"}
    # A coordinator listing the staff receives the others' e-mail and phone, not their own.
    colleague = as_caller(registry, Role.COORDINATOR, tenant=tenant)
    for who in (coordinator, colleague):
        assert (await registry.http.put(f"/tenants/{tenant}/staff/me", json=STAFF_BODY, headers=who.headers)).is_success
    listed = await registry.http.get(f"/tenants/{tenant}/staff", headers=colleague.headers)
    assert listed.status_code == 200 and len(listed.json()["items"]) == 2
    staff_reads = await audit.find({"tenant": tenant, "actor": colleague.subject, "resource_type": "staff"}).to_list()
    assert [(entry["operation"], entry["resource_id"]) for entry in staff_reads if entry["operation"] == "read"] == [
        ("read", f"{tenant}:{coordinator.subject}")
    ]
    assert all(
        set(entry["fields"]) == {"name", "email", "phone"} for entry in staff_reads if entry["operation"] == "read"
    )
