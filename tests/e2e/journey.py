"""What a municipality does, step by step, against the running platform (for the e2e tests)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaProducer

from lotse_cli.supervisor import Platform, Ports
from lotse_contracts import partner_inbound_topic, to_bytes, topics_for_tenants
from lotse_devstack import ensure_topics
from lotse_devstack.processes import free_port
from lotse_runtime.auth import Role
from tests.support import events, tokens

T = TypeVar("T")
CENTRE = {"lat": 51.9607, "lon": 7.6261}


def free_ports(kafka: int | None = None) -> Ports:
    """Loopback ports nobody uses, for a platform of a test's own (the broker's may be given)."""
    return Ports(
        kafka=kafka or free_port(),
        mongo=free_port(),
        smtp=free_port(),
        mailbox=free_port(),
        sms=free_port(),
        registry=free_port(),
        matching=free_port(),
        notifications=free_port(),
        idp=free_port(),
        portal=free_port(),
    )


def eventually(what: str, probe: Callable[[], T | None], timeout: float = 90.0, interval: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} did not happen within {timeout:.0f}s (last: {last!r})")


class Municipality:
    """One tenant of the running platform, with its people's tokens."""

    def __init__(self, platform: Platform, slug: str) -> None:
        self.platform = platform
        self.slug = slug
        self.http = httpx.Client(timeout=15.0)
        self.office_email = f"office@{slug}.example"
        self.organisation_id = ""

    def token(self, role: Role, subject: str = "e2e", tenant: str | None = None) -> str:
        # The platform accepts the tests' issuer (tests/support/tokens.py), as it would a provider's.
        return tokens.issue(subject, [role], tenant=tenant or self.slug)

    def call(self, method: str, service: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(
            method, f"{self.platform.url(service)}{path}", headers={"Authorization": f"Bearer {token}"}, **kwargs
        )

    def onboard(self) -> None:
        asyncio.run(ensure_topics(self.platform.stack.kafka_bootstrap, topics_for_tenants([self.slug])))
        body = {
            "slug": self.slug,
            "name": f"Stadt {self.slug}",
            "municipality_key": "05999777",
            "default_language": "de",
            "supported_languages": ["de", "en", "ar"],
            "timezone": "Europe/Berlin",
            "coordination_email": self.office_email,
        }
        admin = tokens.issue("e2e-admin", [Role.PLATFORM_ADMIN])
        response = self.call("POST", "registry", "/tenants", admin, json=body)
        assert response.status_code == 201, response.text
        organisation = {
            "name": "Koordinationsstelle",
            "kind": "coordination_office",
            "contact_email": self.office_email,
        }
        response = self.call(
            "POST", "registry", f"/tenants/{self.slug}/organisations", self.token(Role.COORDINATOR), json=organisation
        )
        assert response.status_code == 201, response.text
        self.organisation_id = response.json()["organisation_id"]

    def register_volunteer(self, name: str, language: str) -> tuple[str, str, str]:
        """Self-registration over HTTP; returns (volunteer id, email, phone)."""
        volunteer_id = str(uuid.uuid4())
        email = f"{name.lower()}.{volunteer_id[:8]}@{self.slug}.example"
        phone = f"+49151{uuid.UUID(volunteer_id).int % 10**8:08d}"
        body = {
            "contact": {
                "display_name": f"{name} {volunteer_id[:8]}",
                "email": email,
                "phone": phone,
                "preferred_language": language,
                "channels": ["email", "in_app"],
            },
            "skills": ["accompaniment"],
            "languages": [{"language": "ar", "level": "native"}, {"language": "de", "level": "b2"}],
            "home_area": {"point": CENTRE, "postcode": "48143"},
            "travel_radius_km": 10,
            "consent": {"purposes": ["matching", "contact"], "text_version": "2026-01"},
            "availability": {
                "weekly_slots": [
                    {"weekday": day, "start": "08:00:00", "end": "20:00:00"}
                    for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
                ],
                "max_concurrent_engagements": 2,
            },
        }
        token = self.token(Role.VOLUNTEER, subject=volunteer_id)
        response = self.call("POST", "registry", f"/tenants/{self.slug}/volunteers", token, json=body)
        assert response.status_code == 201, response.text
        return volunteer_id, email, phone

    def need_command(self, external_ref: str, tenant: str | None = None, days_ahead: int = 3) -> bytes:
        """A partner's ReportNeed for a need the registered volunteers fit, on the first weekday
        ``days_ahead`` days from now."""
        start = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=days_ahead)
        while start.weekday() > 4:
            start += timedelta(days=1)
        # Every field the volunteers' fit depends on is set here, not taken from the contract's example.
        command = events.report_need(
            tenant or self.slug,
            external_ref,
            organisation_id=self.organisation_id,
            category="accompaniment_to_authorities",
            description="Begleitung zur Ausländerbehörde.",
            required_skills=["accompaniment"],
            languages=[{"language": "ar", "min_level": "b2"}],
            place={"point": CENTRE, "district": "Mitte"},
            schedule={"kind": "one_off", "start": start, "end": start + timedelta(hours=2)},
            volunteers_needed=1,
            certificate_required=None,
            household_ref=None,
        )
        return to_bytes(command)

    def publish(self, value: bytes, key: bytes = b"") -> None:
        async def send() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.platform.stack.kafka_bootstrap, enable_idempotence=False)
            await producer.start()
            try:
                await producer.send_and_wait(partner_inbound_topic(self.slug), value, key=key or None)
            finally:
                await producer.stop()

        asyncio.run(send())

    def mails_to(self, address: str) -> list[dict[str, Any]]:
        summaries = self.http.get(f"{self.platform.mailbox_url}/messages", params={"to": address}).json()
        return [self.http.get(f"{self.platform.mailbox_url}/messages/{m['id']}").json() for m in summaries]

    def needs(self) -> list[dict[str, Any]]:
        """Every need of the tenant, page by page."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            response = self.call(
                "GET", "registry", f"/tenants/{self.slug}/needs", self.token(Role.COORDINATOR), params=params
            )
            assert response.status_code == 200, response.text
            page = response.json()
            found.extend(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return found
