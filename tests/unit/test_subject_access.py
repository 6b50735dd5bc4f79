"""The subject-access export's shape (lotse_runtime.subject_access) and the portal's office form:
secrets are named and never shown, stored values become JSON, only the person and the tenant's
coordinators may ask, and the office's request needs its confirmation and a date not ahead."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from lotse_portal.domain import read_subject_access_request
from lotse_portal.store import PendingSignIn, Session, SignedInUser
from lotse_portal.subject_access import sessions_section
from lotse_runtime.auth import Principal, Role
from lotse_runtime.problems import Problem
from lotse_runtime.subject_access import WITHHELD, may_ask, office_request, section

TENANT, VOLUNTEER = "musterstadt", str(uuid.uuid4())


def test_a_section_withholds_secrets_by_path_and_turns_stored_values_into_json() -> None:
    stored = {
        "_id": "musterstadt:v1",
        "tenant": TENANT,
        "secret_sha256": "abc123",
        "user": {"access_token": "sealed-token", "name": "Maria"},
        "created_at": datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        "value": json.dumps({"type": "registered"}).encode(),
        "raw": b"\x00\xff",
        "days": (date(2026, 3, 2),),
    }
    found = section("why", [stored], secrets=("secret_sha256", "user.access_token", "user.refresh_token"))
    (record,) = found.records
    assert found.withheld == ["secret_sha256", "user.access_token", "user.refresh_token"]
    assert record["secret_sha256"] == WITHHELD and record["user"] == {"access_token": WITHHELD, "name": "Maria"}
    assert "tenant" not in record and "abc123" not in found.model_dump_json()
    assert record["created_at"] == "2026-03-01T09:30:00+00:00" and record["days"] == ["2026-03-02"]
    assert record["value"] == {"type": "registered"} and record["raw"] == "AP8="
    assert stored["secret_sha256"] == "abc123", "the stored document is not changed"


def principal(*roles: Role, subject: str = VOLUNTEER, tenant: str | None = TENANT) -> Principal:
    return Principal(subject, tenant, frozenset(roles), organisation="org" if Role.INITIATIVE_ADMIN in roles else None)


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        (principal(Role.VOLUNTEER), None),
        (principal(Role.COORDINATOR, subject="office-jana"), None),
        (principal(Role.VOLUNTEER, subject=str(uuid.uuid4())), 404),
        (principal(Role.INITIATIVE_ADMIN, subject="admin"), 403),
        (principal(Role.PARTNER, subject="case-management"), 403),
        (principal(Role.COORDINATOR, tenant="anderstadt"), 404),
        (principal(Role.PLATFORM_ADMIN, tenant=None), 403),
    ],
)
def test_only_the_person_and_the_tenants_coordinators_may_ask(caller: Principal, status: int | None) -> None:
    if status is None:
        may_ask(caller, TENANT, VOLUNTEER)
        return
    with pytest.raises(Problem) as refused:
        may_ask(caller, TENANT, VOLUNTEER)
    assert refused.value.status == status


def test_the_office_confirms_a_written_request_and_its_date() -> None:
    today = date(2026, 12, 1)
    assert read_subject_access_request({"written_request": "yes", "request_date": "2026-11-28"}, today) == (
        date(2026, 11, 28),
        {},
    )
    received, errors = read_subject_access_request({"request_date": ""}, today)
    assert received is None and set(errors) == {"written_request", "request_date"}
    received, errors = read_subject_access_request({"written_request": "yes", "request_date": "2026-12-02"}, today)
    assert received is None and set(errors) == {"request_date"} and "Zukunft" in errors["request_date"]
    received, errors = read_subject_access_request({"written_request": "yes", "request_date": "gestern"}, today)
    assert received is None and set(errors) == {"request_date"}


def test_a_secret_inside_a_list_of_documents_is_withheld_in_every_item() -> None:
    stored = {
        "_id": "d1",
        "attempts": [{"token": "t1", "at": 1}, {"token": None}, {"other": "x"}, "plain"],
        "value": {"data": {"keys": [{"wrapped_key": "k1"}, {"wrapped_key": "k2"}]}},
    }
    (record,) = section("why", [stored], secrets=("attempts.token", "value.data.keys.wrapped_key")).records
    assert record["attempts"] == [{"token": WITHHELD, "at": 1}, {"token": None}, {"other": "x"}, "plain"]
    assert record["value"] == {"data": {"keys": [{"wrapped_key": WITHHELD}, {"wrapped_key": WITHHELD}]}}


def test_the_portals_sessions_withhold_every_secret_of_a_session() -> None:
    session = Session.new(timedelta(hours=1))
    pending = PendingSignIn(state="state-s3cr3t", nonce="nonce-s3cr3t", code_verifier="pkce-s3cr3t", next_path="/")
    user = SignedInUser(
        subject=VOLUNTEER,
        volunteer_id=VOLUNTEER,
        tenant=TENANT,
        roles=("volunteer",),
        organisation=None,
        name="Maria",
        access_token="access-s3cr3t",
        refresh_token="refresh-s3cr3t",
        id_token="id-s3cr3t",
        expires_at=datetime.now(UTC),
    )
    document = replace(session, pending=pending, user=user, feed_url="https://feed/s3cr3t").to_document()
    exported = sessions_section([document]).model_dump_json()
    assert "s3cr3t" not in exported and session.csrf not in exported and document["_id"] not in exported
    assert "Maria" in exported and '"next_path":"/"' in exported


def test_the_office_states_the_written_request_and_the_person_need_not() -> None:
    office = principal(Role.COORDINATOR, subject="office-jana")
    assert office_request(principal(Role.VOLUNTEER), VOLUNTEER, None) is None
    with pytest.raises(Problem) as unstated:
        office_request(office, VOLUNTEER, None)
    assert unstated.value.status == 422 and unstated.value.extensions["errors"][0]["field"] == "query.request_date"
    with pytest.raises(Problem):
        office_request(office, VOLUNTEER, datetime.now(UTC).date() + timedelta(days=3))
    received = date(2026, 11, 28)
    request = office_request(office, VOLUNTEER, received)
    assert request is not None and request.describe().endswith("received on 2026-11-28")
