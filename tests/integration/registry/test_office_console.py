"""The office's console in the registry (issue 16): certificate checks and their history, expiry
notices, the office's staff and each volunteer's contact person, and the volunteer search, on the
running registry with its real database and broker."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from lotse_contracts.topics import VOLUNTEERS
from lotse_registry import domain
from lotse_registry.api import subject_access
from lotse_registry.reminders import ExpiryNotices
from lotse_registry.store import Store
from lotse_runtime.auth import Principal, Role
from lotse_runtime.problems import PROBLEM_JSON
from tests.integration.registry.conftest import RunningRegistry
from tests.integration.registry.support import add_organisation, onboard, tenant_events, volunteer_body
from tests.support import tokens
from tests.support.subject_access import collections_naming, sections_with_records

pytestmark = pytest.mark.asyncio(loop_scope="module")

BERLIN = ZoneInfo("Europe/Berlin")  # the test tenants' time zone


def today(zone: ZoneInfo = BERLIN) -> date:
    """The office's day, read when asked (a run may cross midnight)."""
    return datetime.now(zone).date()


IN_FIVE_YEARS = (today() + timedelta(days=5 * 365)).isoformat()
JANA = "office-jana"  # a coordinator's token subject (not a UUID: her staff id is derived from it)


def staff_id_of(subject: str) -> str:
    return domain.staff_id(Principal(subject, None, frozenset(), issuer=tokens.issuer().url))


def police_check(**overrides: Any) -> dict[str, Any]:
    body = {"kind": "extended_police_certificate", "seen_on": today().isoformat(), "valid_until": IN_FIVE_YEARS}
    body.update(overrides)
    return body


@dataclass
class Office:
    """One tenant with two initiatives, a volunteer of each and one registered with the office."""

    tenant: str
    org: str
    other_org: str
    volunteer: str  # of org
    other_volunteer: str  # of other_org
    direct_volunteer: str  # registered with the municipality

    def base(self, volunteer_id: str) -> str:
        return f"/tenants/{self.tenant}/volunteers/{volunteer_id}"


async def register(registry: RunningRegistry, tenant: str, organisation_id: str | None, **overrides: Any) -> str:
    volunteer_id = str(uuid.uuid4())
    response = await registry.http.post(
        f"/tenants/{tenant}/volunteers",
        json=volunteer_body(organisation_id, **overrides),
        headers=registry.auth(Role.VOLUNTEER, tenant=tenant, subject=volunteer_id),
    )
    assert response.status_code == 201, response.text
    return volunteer_id


async def make_office(registry: RunningRegistry) -> Office:
    tenant = await onboard(registry)
    org = await add_organisation(registry, tenant)
    other_org = await add_organisation(registry, tenant, name="Runder Tisch Nord", kind="round_table")
    ids = [await register(registry, tenant, organisation_id) for organisation_id in (org, other_org, None)]
    return Office(tenant, org, other_org, *ids)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def office(registry: RunningRegistry) -> Office:
    return await make_office(registry)


def coordinator(registry: RunningRegistry, office: Office, subject: str = JANA) -> dict[str, str]:
    return registry.auth(Role.COORDINATOR, tenant=office.tenant, subject=subject)


def initiative_admin(registry: RunningRegistry, office: Office, org: str | None = None) -> dict[str, str]:
    return registry.auth(Role.INITIATIVE_ADMIN, tenant=office.tenant, org=org or office.org)


def as_volunteer(registry: RunningRegistry, office: Office, volunteer_id: str) -> dict[str, str]:
    return registry.auth(Role.VOLUNTEER, tenant=office.tenant, subject=volunteer_id)


def fields(response: Any) -> list[str]:
    assert response.status_code == 422 and response.headers["content-type"] == PROBLEM_JSON, response.text
    return [error["field"] for error in response.json()["errors"]]


# --- certificate checks -------------------------------------------------------------------------


async def test_the_office_records_a_check_and_who_saw_it_comes_from_the_token(
    registry: RunningRegistry, kafka_bootstrap: str
) -> None:
    office = await make_office(registry)
    http, path = registry.http, office.base(office.direct_volunteer) + "/certificate-checks"
    before = await http.get(office.base(office.direct_volunteer), headers=coordinator(registry, office))
    # The volunteer declared one (valid as long as they like): declared, not checked.
    assert before.json()["certificate_status"] == [
        {"kind": "extended_police_certificate", "declared": True, "state": "declared_not_checked", "valid_until": None}
    ]

    recorded = await http.post(path, json=police_check(), headers=coordinator(registry, office))

    assert recorded.status_code == 201, recorded.text
    (entry,) = recorded.json()["certificate_checks"]
    assert (entry["kind"], entry["valid_until"], entry["seen_by"]) == (
        "extended_police_certificate",
        IN_FIVE_YEARS,
        staff_id_of(JANA),
    )
    assert recorded.json()["certificate_status"][0]["state"] == "checked"
    assert recorded.json()["certificates"] == before.json()["certificates"]  # the declaration stays as it was
    events = await tenant_events(kafka_bootstrap, VOLUNTEERS.name, office.tenant, expected=4)
    checked = [event for event in events if event.type.endswith("certificate_checked.v1")]
    assert [str(c.valid_until) for c in checked[0].data.checks] == [IN_FIVE_YEARS]
    assert checked[0].subject == office.direct_volunteer and "seen_by" not in checked[0].model_dump_json()


async def test_a_typed_in_seen_by_or_an_impossible_check_is_refused_naming_the_field(
    registry: RunningRegistry, office: Office
) -> None:
    http, path = registry.http, office.base(office.direct_volunteer) + "/certificate-checks"
    headers = coordinator(registry, office)
    assert fields(await http.post(path, json=police_check(seen_by="someone"), headers=headers)) == ["seen_by"]
    assert fields(await http.post(path, json=police_check(kind="swimming_badge"), headers=headers)) == ["kind"]
    tomorrow = (today() + timedelta(days=1)).isoformat()
    assert fields(await http.post(path, json=police_check(seen_on=tomorrow), headers=headers)) == ["seen_on"]
    yesterday = (today() - timedelta(days=1)).isoformat()
    expired = police_check(seen_on="2020-01-01", valid_until=yesterday)
    assert fields(await http.post(path, json=expired, headers=headers)) == ["valid_until"]
    assert fields(await http.post(path, json=police_check(valid_until=20991231), headers=headers)) == ["valid_until"]


async def test_a_check_is_dated_by_the_municipalitys_day_not_by_utc(registry: RunningRegistry) -> None:
    # Kiritimati (UTC+14) is always a day ahead of Pago Pago (UTC-11): whatever the hour, UTC's date
    # differs from one of them, so a registry judging "today" by UTC refuses or accepts wrongly here.
    ahead, behind = ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Pacific/Pago_Pago")
    for zone, accepted in ((ahead, True), (behind, False)):
        tenant = await onboard(registry, timezone=zone.key)
        volunteer = await register(registry, tenant, None)
        path = f"/tenants/{tenant}/volunteers/{volunteer}/certificate-checks"
        headers = registry.auth(Role.COORDINATOR, tenant=tenant, subject=JANA)
        response = await registry.http.post(path, json=police_check(seen_on=today(ahead).isoformat()), headers=headers)
        if accepted:
            assert response.status_code == 201, (zone, response.text)
        else:
            assert fields(response) == ["seen_on"], zone


async def test_who_may_record_read_and_revoke_checks(registry: RunningRegistry, office: Office) -> None:
    http = registry.http
    own = office.base(office.volunteer) + "/certificate-checks"
    # The volunteer's own organisation records; another's does not see the volunteer at all.
    assert (await http.post(own, json=police_check(), headers=initiative_admin(registry, office))).status_code == 201
    other = initiative_admin(registry, office, office.other_org)
    assert (await http.post(own, json=police_check(), headers=other)).status_code == 404
    assert (await http.get(own, headers=other)).status_code == 404
    # The volunteer reads their history but cannot vouch for themselves.
    me = as_volunteer(registry, office, office.volunteer)
    assert (await http.post(own, json=police_check(), headers=me)).status_code == 403
    (check,) = (await http.get(own, headers=me)).json()["items"]
    assert (check["status"], check["seen_by_role"]) == ("in_force", "initiative_admin")
    revocation = f"{own}/{check['check_id']}/revocation"
    assert (await http.post(revocation, json={}, headers=me)).status_code == 403
    # Initiative admins manage no volunteer registered with the municipality.
    direct = office.base(office.direct_volunteer) + "/certificate-checks"
    assert (await http.post(direct, json=police_check(), headers=initiative_admin(registry, office))).status_code == 404


async def test_a_revoked_or_replaced_check_stays_in_the_history(registry: RunningRegistry, office: Office) -> None:
    http, headers = registry.http, coordinator(registry, office)
    path = office.base(office.other_volunteer) + "/certificate-checks"
    first = await http.post(
        path, json=police_check(valid_until=(today() + timedelta(days=400)).isoformat()), headers=headers
    )
    assert first.status_code == 201
    second = await http.post(path, json=police_check(), headers=headers)
    (in_force,) = second.json()["certificate_checks"]

    revoked = await http.post(
        f"{path}/{in_force['check_id']}/revocation", json={"reason": "withdrawn"}, headers=headers
    )

    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["certificate_checks"] == []
    assert revoked.json()["certificate_status"][0]["state"] == "declared_not_checked"
    history = (await http.get(path, headers=headers)).json()["items"]
    assert [(item["status"], item.get("revocation_reason")) for item in history] == [
        ("revoked", "withdrawn"),
        ("superseded", None),
    ]
    assert history[1]["superseded_by"] == in_force["check_id"]
    again = await http.post(f"{path}/{in_force['check_id']}/revocation", json={}, headers=headers)
    assert again.status_code == 409
    unknown = await http.post(f"{path}/{uuid.uuid4()}/revocation", json={}, headers=headers)
    assert unknown.status_code == 404
    assert fields(
        await http.post(f"{path}/{in_force['check_id']}/revocation", json={"reason": "x"}, headers=headers)
    ) == ["reason"]


async def test_erasure_deletes_the_volunteers_checks(registry: RunningRegistry, office: Office) -> None:
    http, headers = registry.http, coordinator(registry, office)
    volunteer_id = await register(registry, office.tenant, None)
    recorded = await http.post(office.base(volunteer_id) + "/certificate-checks", json=police_check(), headers=headers)
    assert recorded.status_code == 201
    assert await registry.database.certificate_checks.count_documents({"volunteer_id": volunteer_id}) == 1
    assert (await http.post(office.base(volunteer_id) + "/erasure", headers=headers)).status_code == 200
    assert await registry.database.certificate_checks.count_documents({"volunteer_id": volunteer_id}) == 0
    assert (await http.get(office.base(volunteer_id) + "/certificate-checks", headers=headers)).json() == {"items": []}


# --- expiry notices -----------------------------------------------------------------------------


async def test_each_expiry_notice_is_published_once_also_by_two_timers_and_after_a_restart(
    registry: RunningRegistry, kafka_bootstrap: str
) -> None:
    office = await make_office(registry)
    until = today() + timedelta(weeks=10)
    recorded = await registry.http.post(
        office.base(office.direct_volunteer) + "/certificate-checks",
        json=police_check(valid_until=until.isoformat()),
        headers=coordinator(registry, office),
    )
    assert recorded.status_code == 201
    store: Store = registry.app.state.registry
    eight_weeks = domain.notice_due_at(until, 8, BERLIN) + timedelta(hours=7)

    # Two replicas' timers at once, then one started afresh (a restart) on the same day.
    at_once = await asyncio.gather(
        ExpiryNotices(store, 60, clock=lambda: eight_weeks).tick(),
        ExpiryNotices(store, 60, clock=lambda: eight_weeks).tick(),
        return_exceptions=True,
    )
    restarted = await ExpiryNotices(store, 60, clock=lambda: eight_weeks + timedelta(hours=1)).tick()
    two_weeks = await ExpiryNotices(store, 60, clock=lambda: domain.notice_due_at(until, 2, BERLIN)).tick()

    assert sum(sent for sent in at_once if isinstance(sent, int)) == 1 and restarted == 0 and two_weeks == 1
    events = await tenant_events(kafka_bootstrap, VOLUNTEERS.name, office.tenant, expected=6, settle=1.0)
    expiring = [event for event in events if event.type.endswith("certificate_expiring.v1")]
    assert [(e.data.weeks_before, e.data.valid_until, e.subject) for e in expiring] == [
        (8, until, office.direct_volunteer),
        (2, until, office.direct_volunteer),
    ]
    history = await registry.http.get(
        office.base(office.direct_volunteer) + "/certificate-checks", headers=coordinator(registry, office)
    )
    assert [sent["weeks_before"] for sent in history.json()["items"][0]["notices_sent"]] == [8, 2]


# --- staff and the contact person ---------------------------------------------------------------


async def test_a_coordinator_enters_themself_as_staff_and_becomes_a_volunteers_contact_person(
    registry: RunningRegistry, office: Office, kafka_bootstrap: str
) -> None:
    http, headers = registry.http, coordinator(registry, office)
    staff = f"/tenants/{office.tenant}/staff"
    me = {"name": "Jana Weber", "email": "j.weber@musterstadt.de", "phone": "+4930123456"}
    entered = await http.put(f"{staff}/me", json=me, headers=headers)
    assert entered.status_code == 200, entered.text
    assert entered.json() == {"staff_id": staff_id_of(JANA), **me}
    assert (await http.put(f"{staff}/me", json=me, headers=initiative_admin(registry, office))).status_code == 403
    assert fields(await http.put(f"{staff}/me", json={**me, "email": "no address"}, headers=headers)) == ["email"]
    assert (await http.get(staff, headers=headers)).json()["items"] == [entered.json()]
    assert (await http.get(staff, headers=initiative_admin(registry, office))).status_code == 403

    path = office.base(office.volunteer) + "/contact-person"
    unknown = await http.put(path, json={"staff_id": str(uuid.uuid4())}, headers=headers)
    assert fields(unknown) == ["staff_id"]
    assert (
        await http.put(path, json={"staff_id": staff_id_of(JANA)}, headers=initiative_admin(registry, office))
    ).status_code == 403
    named = await http.put(path, json={"staff_id": staff_id_of(JANA)}, headers=headers)
    assert named.status_code == 200 and named.json()["contact_person_id"] == staff_id_of(JANA)

    # The volunteer sees their contact person in their own data, with how to reach them.
    mine = await http.get(office.base(office.volunteer), headers=as_volunteer(registry, office, office.volunteer))
    assert mine.json()["contact_person"] == entered.json()
    # Nobody is removed while they are someone's contact person.
    assert (await http.delete(f"{staff}/{staff_id_of(JANA)}", headers=headers)).status_code == 409
    assert (await http.put(path, json={"staff_id": None}, headers=headers)).json()["contact_person_id"] is None
    assert (await http.delete(f"{staff}/{staff_id_of(JANA)}", headers=headers)).status_code == 204
    assert (await http.delete(f"{staff}/{staff_id_of(JANA)}", headers=headers)).status_code == 404

    events = await tenant_events(kafka_bootstrap, VOLUNTEERS.name, office.tenant, expected=5, settle=1.0)
    changed = [e for e in events if e.type.endswith("contact_person_changed.v1")]
    assert [e.data.model_dump(mode="json") for e in changed] == [
        {"volunteer_id": office.volunteer, "staff_id": staff_id_of(JANA)},
        {"volunteer_id": office.volunteer, "staff_id": None},
    ]
    assert "Jana" not in "".join(e.model_dump_json() for e in changed)


# --- the search ---------------------------------------------------------------------------------


async def test_the_search_filters_pages_and_keeps_to_need_to_know(registry: RunningRegistry) -> None:
    tenant = await onboard(registry)
    org = await add_organisation(registry, tenant)
    http, office_headers = registry.http, registry.auth(Role.COORDINATOR, tenant=tenant)

    def contact(name: str) -> dict[str, Any]:
        return {**volunteer_body()["contact"], "display_name": name}

    far_north = {"point": {"lat": 52.52 + 20 / 111.195, "lon": 13.405}, "postcode": "13000"}
    anna = await register(registry, tenant, None, contact=contact("Anna Schulz"), skills=["childcare", "driving"])
    boris = await register(
        registry,
        tenant,
        None,
        contact=contact("Boris Petrenko"),
        languages=[{"language": "uk", "level": "native"}, {"language": "de", "level": "b1"}],
        home_area=far_north,
        availability={
            "weekly_slots": [{"weekday": "saturday", "start": "09:00:00", "end": "12:00:00"}],
            "max_concurrent_engagements": 1,
        },
    )
    clara = await register(registry, tenant, org, contact=contact("Clara Schulz"))
    recorded = await http.post(
        f"/tenants/{tenant}/volunteers/{anna}/certificate-checks", json=police_check(), headers=office_headers
    )
    assert recorded.status_code == 201

    async def found(headers: dict[str, str] | None = None, **query: Any) -> list[str]:
        response = await http.get(f"/tenants/{tenant}/volunteers", params=query, headers=headers or office_headers)
        assert response.status_code == 200, response.text
        return [item["volunteer_id"] for item in response.json()["items"]]

    assert await found() == [anna, boris, clara]
    assert await found(skill=["childcare", "driving"]) == [anna]
    assert await found(language="ar:b2") == [anna, clara]
    assert await found(language=["uk", "de:b1"]) == [boris]
    assert await found(language="de:b2") == [anna, clara]
    assert await found(postcode="13000") == [boris]
    assert await found(near_lat=52.52, near_lon=13.405, within_km=5) == [anna, clara]
    assert await found(available_on="saturday", available_at="10:30") == [boris]
    assert await found(available_on="tuesday") == [anna, clara]
    assert await found(certificate_checked="true") == [anna]
    assert await found(certificate_checked="false") == [boris, clara]
    assert await found(certificate_kind="first_aid") == []
    assert await found(organisation_id=org) == [clara]
    assert await found(name="schulz") == [anna]  # Clara's name is her initiative's to see

    # Paged after the filter: one at a time, each page full while more are left.
    first = await http.get(
        f"/tenants/{tenant}/volunteers", params={"language": "de", "limit": 1}, headers=office_headers
    )
    second = await http.get(
        f"/tenants/{tenant}/volunteers",
        params={"language": "de", "limit": 1, "cursor": first.json()["next_cursor"]},
        headers=office_headers,
    )
    assert [item["volunteer_id"] for item in first.json()["items"] + second.json()["items"]] == [anna, boris]

    # An initiative admin: only their organisation's, whatever they ask for, and no name search.
    admin = registry.auth(Role.INITIATIVE_ADMIN, tenant=tenant, org=org)
    assert await found(admin) == [clara]
    assert await found(admin, organisation_id="someone-else", language="ar") == [clara]
    items = (await http.get(f"/tenants/{tenant}/volunteers", headers=admin)).json()["items"]
    assert items[0]["contact"] == {"display_name": "Clara Schulz"} and "email" not in str(items)
    assert (await http.get(f"/tenants/{tenant}/volunteers", params={"name": "Clara"}, headers=admin)).status_code == 403

    # Bad input names the parameter.
    async def refused(**query: Any) -> list[str]:
        return fields(await http.get(f"/tenants/{tenant}/volunteers", params=query, headers=office_headers))

    assert await refused(language="arabic") == ["query.language"]
    assert await refused(near_lat=52.5, near_lon=13.4) == ["query.within_km"]
    assert await refused(within_km=500, near_lat=52.5, near_lon=13.4) == ["query.within_km"]
    assert await refused(available_at="half past ten") == ["query.available_at"]
    assert await refused(available_at="10:30+01:00") == ["query.available_at"]
    assert await refused(certificate_kind="swimming_badge") == ["query.certificate_kind"]
    assert await refused(postcode="1234") == ["query.postcode"]


async def test_an_initiatives_admin_lists_their_volunteers_with_contact_details_and_nobody_else_does(
    registry: RunningRegistry,
) -> None:
    """``with_contact``: an initiative's admin gets the e-mail and phone of their own volunteers
    in the list (what they read of each one anyway); another initiative's admin gets none of
    them, coordinators may not ask, volunteers may not list."""
    office = await make_office(registry)
    path, http = f"/tenants/{office.tenant}/volunteers", registry.http

    async def listed(headers: dict[str, str], **query: Any) -> dict[str, dict[str, Any]]:
        response = await http.get(path, params=query, headers=headers)
        assert response.status_code == 200, response.text
        return {item["volunteer_id"]: item for item in response.json()["items"]}

    own = await listed(initiative_admin(registry, office), with_contact="true")
    assert list(own) == [office.volunteer]
    given = volunteer_body()["contact"]
    assert own[office.volunteer]["contact"] | given == own[office.volunteer]["contact"]  # e-mail, phone and all
    assert "home_area" not in own[office.volunteer] and "consent" not in own[office.volunteer]
    # Exactly what the admin reads of the volunteer alone.
    single = await http.get(office.base(office.volunteer), headers=initiative_admin(registry, office))
    assert single.json()["contact"] == own[office.volunteer]["contact"]
    # Without asking: the display name only, as before.
    assert (await listed(initiative_admin(registry, office)))[office.volunteer]["contact"] == {"display_name": "Maria"}

    # Another initiative's admin: their own volunteer only, whatever they ask for.
    other_admin = initiative_admin(registry, office, office.other_org)
    other = await listed(other_admin, with_contact="true", organisation_id=office.org)
    assert list(other) == [office.other_volunteer]
    assert other[office.other_volunteer]["contact"]["email"] == "maria@example.org"

    # Coordinators: not in a list, not even for the volunteers they coordinate themselves.
    refused = await http.get(path, params={"with_contact": "true"}, headers=coordinator(registry, office))
    assert refused.status_code == 403 and "with_contact" in refused.json()["detail"]
    everyone = await listed(coordinator(registry, office))
    assert set(everyone) == {office.volunteer, office.other_volunteer, office.direct_volunteer}
    assert "email" not in str(everyone) and "phone" not in str(everyone)
    volunteer = as_volunteer(registry, office, office.volunteer)
    assert (await http.get(path, params={"with_contact": "true"}, headers=volunteer)).status_code == 403
    # Another tenant's admin of the same organisation id: not a member, nothing.
    outsider = registry.auth(Role.INITIATIVE_ADMIN, tenant=await onboard(registry), org=office.org)
    assert (await http.get(path, params={"with_contact": "true"}, headers=outsider)).status_code == 404


# --- the subject-access export (issue 18, item 6) -----------------------------------------------


async def plant_audit_entries(registry: RunningRegistry, tenant: str, volunteer_id: str) -> dict[str, set[str]]:
    """Entries filed the ways that do not name the volunteer as the resource: a many-document
    write selected by their id (as written before entries named their subject), a certificate
    check's write without a subject, something the volunteer did themself; and one about someone
    else. Their ids."""
    check = await registry.database["certificate_checks"].find_one({"tenant": tenant, "volunteer_id": volunteer_id})
    assert check is not None
    now = datetime.now(ZoneInfo("UTC"))
    entry = {
        "tenant": tenant,
        "at": now,
        "roles": [],
        "action": "planted",
        "fields": [],
        "expires_at": now + timedelta(days=1),
    }
    kinds = {
        "many": ("system", "update", "consents", f"volunteer_id={volunteer_id}"),
        "check": ("office-jana", "update", "certificate_checks", str(check["_id"])),
        "by-them": (volunteer_id, "read", "staff", "staff-somebody"),
        "other": ("office-jana", "update", "volunteers", str(uuid.uuid4())),
    }
    ids = {kind: f"planted-{kind}-{uuid.uuid4()}" for kind in kinds}
    await registry.database["audit"].insert_many(
        [
            entry
            | {"_id": ids[kind], "actor": actor, "operation": operation}
            | {"resource_type": resource_type, "resource_id": resource_id}
            for kind, (actor, operation, resource_type, resource_id) in kinds.items()
        ]
    )
    return {"about": {ids["many"], ids["check"], ids["by-them"]}, "others": {ids["other"]}}


async def office_reads(registry: RunningRegistry, tenant: str, volunteer_id: str) -> list[dict[str, Any]]:
    """The audit trail's entries of subject-access exports of the volunteer's data."""
    query = {"tenant": tenant, "resource_id": volunteer_id, "operation": "read", "action": {"$regex": "subject-access"}}
    return await registry.database["audit"].find(query).to_list()


async def test_the_subject_access_export_holds_every_collection_about_the_volunteer(registry: RunningRegistry) -> None:
    """Profile, consents, checks with their history, the contact person and the events, for the
    volunteer and the office only; no collection naming the volunteer is left out."""
    office = await make_office(registry)
    http, headers, volunteer = registry.http, coordinator(registry, office), office.volunteer
    me = {"name": "Jana Weber", "email": "j.weber@musterstadt.de", "phone": "+4930123456"}
    assert (await http.put(f"/tenants/{office.tenant}/staff/me", json=me, headers=headers)).status_code == 200
    named = await http.put(
        office.base(volunteer) + "/contact-person", json={"staff_id": staff_id_of(JANA)}, headers=headers
    )
    assert named.status_code == 200, named.text
    checks = office.base(volunteer) + "/certificate-checks"
    for _ in range(2):  # the second replaces the first: both are in the history
        assert (await http.post(checks, json=police_check(), headers=headers)).status_code == 201

    planted = await plant_audit_entries(registry, office.tenant, volunteer)
    path = office.base(volunteer) + "/subject-access"
    mine = await http.get(path, headers=as_volunteer(registry, office, volunteer))
    assert mine.status_code == 200, mine.text
    export = mine.json()
    assert (export["service"], export["tenant"], export["volunteer_id"]) == ("registry", office.tenant, volunteer)
    assert {"volunteer", "consents", "certificate_checks", "contact_person", "outbox"} <= sections_with_records(export)
    (profile,) = export["volunteer"]["records"]
    assert profile["_id"] == volunteer and profile["contact"]["email"] == volunteer_body(office.org)["contact"]["email"]
    assert len(export["certificate_checks"]["records"]) == 2
    assert export["contact_person"]["records"][0]["email"] == me["email"]
    assert any(
        event["type"].startswith("de.lotse.registry.volunteer.registered") for event in export["outbox"]["records"]
    )
    audited = {entry["_id"] for entry in export["audit"]["records"]}
    assert planted["about"] <= audited, "an audit entry about or by the volunteer is missing"
    assert not planted["others"] & audited, "an audit entry about someone else is shown"
    check_ids = {check["_id"] for check in export["certificate_checks"]["records"]}
    assert check_ids <= {entry["resource_id"] for entry in export["audit"]["records"]}, "the checks' writes"
    held = await collections_naming(registry.database, volunteer)
    assert {"volunteers", "consents", "certificate_checks", "outbox"} <= held
    assert held <= {*subject_access.COLLECTIONS.values(), *subject_access.NOT_SECTIONS}, "a collection is missing"

    # The person's key travels in an event of the outbox: its value is withheld there too.
    assert "value.data.wrapped_key" in export["outbox"]["withheld"]
    issued = [e for e in export["outbox"]["records"] if e["type"].startswith("de.lotse.registry.person_key.issued")]
    assert issued and all(event["value"]["data"]["wrapped_key"] == "(withheld)" for event in issued)
    assert not await office_reads(registry, office.tenant, volunteer), "the person's own export is no disclosure"

    # The office states the written request it answers; its export is in the audit trail.
    unstated = await http.get(path, headers=headers)
    assert unstated.status_code == 422, unstated.text
    assert [error["field"] for error in unstated.json()["errors"]] == ["query.request_date"]
    ahead = (today() + timedelta(days=3)).isoformat()
    assert (await http.get(path, params={"request_date": ahead}, headers=headers)).status_code == 422
    received = (today() - timedelta(days=2)).isoformat()
    # Free text would stay in the append-only trail for years: none is taken (a name typed here is not kept).
    stated = {"request_date": received, "reason": "Auskunft für Ahmed Yilmaz"}
    for_office = await http.get(path, params=stated, headers=headers)
    assert for_office.status_code == 200, for_office.text
    assert for_office.json()["certificate_checks"] == export["certificate_checks"]
    (read,) = await office_reads(registry, office.tenant, volunteer)
    assert read["actor"] == JANA and read["operation"] == "read" and read["resource_type"] == "volunteers"
    assert read["action"].endswith(f"written request received on {received})")
    assert "Ahmed" not in str([entry async for entry in registry.database["audit"].find({"tenant": office.tenant})])
    assert {"volunteer", "contact_person", "certificate_checks"} <= set(read["fields"])
    staff_reads = registry.database["audit"].find(
        {"tenant": office.tenant, "resource_type": "staff", "action": read["action"]}
    )
    assert [entry["resource_id"] async for entry in staff_reads] == [export["contact_person"]["records"][0]["_id"]]
    refused = {
        "another volunteer": as_volunteer(registry, office, office.other_volunteer),
        "its initiative's admin": initiative_admin(registry, office),
        "another initiative's admin": initiative_admin(registry, office, office.other_org),
        "another tenant's coordinator": registry.auth(Role.COORDINATOR, tenant=await onboard(registry)),
    }
    answers = {name: (await http.get(path, headers=caller)).status_code for name, caller in refused.items()}
    assert answers == {
        "another volunteer": 404,
        "its initiative's admin": 403,
        "another initiative's admin": 403,
        "another tenant's coordinator": 404,
    }
