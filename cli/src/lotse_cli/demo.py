"""The scenario of ``lotse up --demo``: what a municipality and its partner systems would do.

Everyone signs in at the local OpenID provider with the demo's accounts (demo_logins.py), as
people and partner systems would; nothing here signs a token itself.

1. A platform admin onboards two municipalities over the registry's HTTP API; their
   coordinators register the organisations and load the postcode tables.
2. A partner system of each municipality registers volunteers over HTTPS (personal data never
   goes on a Kafka topic, a log Lotse cannot erase a person from), and case management reports
   needs on the tenant's Kafka inbound topic.
3. Matching proposes volunteers; notifications emails the proposals to the SMTP sink.
4. Some volunteers follow the accept link in their email and confirm on the page.
5. One need finds nobody, and the coordination office gets the escalation.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaProducer

from lotse_cli.demo_data import DEMO_TENANTS, DemoTenant, demo_needs, demo_volunteers, unfittable_need
from lotse_cli.demo_logins import DemoLogins
from lotse_cli.supervisor import Platform
from lotse_contracts import RegisterVolunteer, ReportNeed, new_event, partner_inbound_topic, to_bytes
from lotse_runtime.auth import Role

VOLUNTEERS_PER_TENANT = 150
# Registrations in flight at once: fast enough, and gentle with a registry on a laptop.
REGISTRATIONS_IN_FLIGHT = 8
NEEDS_PER_TENANT = 12
ACCEPTS_PER_TENANT = 3
STEP_TIMEOUT_SECONDS = 180.0
POLL_SECONDS = 1.0
ACCEPT_LINK = re.compile(r"(https?://[^\s\"<>]+/answers/[^\s\"<>?]+)\?choice=accept")
T = TypeVar("T")


class DemoError(RuntimeError):
    """A step of the demo did not happen in time; the message says which."""


@dataclass
class TenantReport:
    tenant: DemoTenant
    organisation_ids: list[str] = field(default_factory=list)
    volunteer_ids: list[str] = field(default_factory=list)
    accepted: int = 0
    escalated: bool = False


def _wait(what: str, probe: Callable[[], T | None], timeout: float = STEP_TIMEOUT_SECONDS) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(POLL_SECONDS)
    raise DemoError(f"demo: {what} did not happen within {timeout:.0f}s; see the service logs")


class Demo:
    def __init__(self, platform: Platform, logins: DemoLogins, say: Callable[[str], None]) -> None:
        self.platform = platform
        self.logins = logins
        self.say = say
        self.http = httpx.Client(timeout=15.0)
        self.today = datetime.now(UTC).date()

    def token(self, roles: list[Role], tenant: str | None = None) -> str:
        """The access token of the demo account of this role and municipality (signed in at the provider)."""
        if self.platform.idp is None:
            raise DemoError("demo: the platform runs without the local OpenID provider; the demo signs in there")
        return self.logins.token(self.platform.idp.issuer, tenant, roles[0])

    def _call(self, method: str, url: str, token: str, **kwargs: Any) -> Any:
        response = self.http.request(method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        if response.status_code >= 400:
            raise DemoError(f"demo: {method} {url} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    def run(self) -> list[TenantReport]:
        reports = [TenantReport(tenant) for tenant in DEMO_TENANTS]
        if self.already_played(reports[0].tenant):
            self.say("the demo municipalities are still there from an earlier run (the data folder survives restarts);")
            self.say("delete the data folder for a fresh demo. Showing what is there:")
            for report in reports:
                self.recall(report)
            return reports
        for report in reports:
            self.onboard(report)
            self.register_demo_volunteer(report)
        asyncio.run(self.register_volunteers(reports))
        for report in reports:
            self.wait_for_volunteers(report)
            self.check_certificates(report)
        asyncio.run(self.publish_needs(reports))
        for report in reports:
            self.accept_some_proposals(report)
        self.wait_for_escalation(reports[0])
        return reports

    def already_played(self, tenant: DemoTenant) -> bool:
        admin = self.token([Role.PLATFORM_ADMIN])
        response = self.http.get(
            f"{self.platform.url('registry')}/tenants/{tenant.slug}", headers={"Authorization": f"Bearer {admin}"}
        )
        return response.status_code == 200

    def recall(self, report: TenantReport) -> None:
        """Organisation and volunteer ids of an earlier run, for the tokens the guide prints."""
        slug = report.tenant.slug
        coordinator = self.token([Role.COORDINATOR], slug)
        registry = self.platform.url("registry")
        organisations = self._call("GET", f"{registry}/tenants/{slug}/organisations", coordinator)["items"]
        report.organisation_ids = [item["organisation_id"] for item in organisations]
        if report.organisation_ids:
            self.logins.assign_organisation(slug, report.organisation_ids[-1])
        volunteers = self._call("GET", f"{registry}/tenants/{slug}/volunteers?limit=5", coordinator)["items"]
        report.volunteer_ids = [item["volunteer_id"] for item in volunteers]
        statistics = self._call("GET", f"{registry}/tenants/{slug}/statistics", coordinator)
        active, needs = statistics["volunteers"]["active"], statistics["needs_by_category"]
        self.say(f"{report.tenant.name}: {active} active volunteers; needs by category and status: {needs}")

    def onboard(self, report: TenantReport) -> None:
        tenant = report.tenant
        registry = self.platform.url("registry")
        body = {
            "slug": tenant.slug,
            "name": tenant.name,
            "municipality_key": tenant.municipality_key,
            "default_language": tenant.languages[0],
            "supported_languages": list(tenant.languages),
            "timezone": "Europe/Berlin",
            "coordination_email": tenant.coordination_email,
            "default_search_radius_km": 10,
        }
        admin = self.token([Role.PLATFORM_ADMIN])
        response = self.http.post(
            f"{registry}/tenants",
            json=body,
            headers={"Authorization": f"Bearer {admin}", "Idempotency-Key": f"demo-onboard-{tenant.slug}"},
        )
        if response.status_code not in (200, 201):
            raise DemoError(f"demo: onboarding {tenant.slug} answered {response.status_code}: {response.text[:300]}")
        coordinator = self.token([Role.COORDINATOR], tenant.slug)
        for number, organisation in enumerate(tenant.organisations):
            created = self.http.post(
                f"{registry}/tenants/{tenant.slug}/organisations",
                json={
                    "name": organisation.name,
                    "kind": organisation.kind,
                    "contact_email": tenant.coordination_email,
                    "districts": list(tenant.districts),
                },
                headers={
                    "Authorization": f"Bearer {coordinator}",
                    "Idempotency-Key": f"demo-org-{tenant.slug}-{number}",
                },
            )
            if created.status_code not in (200, 201):
                raise DemoError(f"demo: organisation {organisation.name} answered {created.status_code}")
            report.organisation_ids.append(created.json()["organisation_id"])
        # Before the volunteers: some give only a postcode, which the registry places by this table.
        table = [
            {"postcode": row.postcode, "lat": row.lat, "lon": row.lon, "district": row.district}
            for row in tenant.postcode_table
        ]
        self._call("PUT", f"{registry}/tenants/{tenant.slug}/postcodes", coordinator, json={"postcodes": table})
        # The demo's initiative admin acts for the last one (its account names it from now on).
        self.logins.assign_organisation(tenant.slug, report.organisation_ids[-1])
        self.say(f"{tenant.name}: onboarded, coordinated by {tenant.how_it_coordinates}")

    def register_demo_volunteer(self, report: TenantReport) -> None:
        """The demo volunteer registers on their own, signed in: the account's subject becomes the
        volunteer id, so the same sign-in later shows their proposals."""
        tenant = report.tenant
        account = self.logins.account(tenant.slug, Role.VOLUNTEER)
        (profile,) = demo_volunteers(tenant, 1, report.organisation_ids, self.today)
        body = profile.model_dump(
            mode="json",
            include={"skills", "languages", "home_area", "travel_radius_km", "certificates", "availability"},
        )
        contact = profile.contact.model_dump(mode="json")
        body["contact"] = {**contact, "display_name": account.name, "email": account.email}
        body["consent"] = {"purposes": [str(p) for p in profile.consent.purposes], "text_version": "demo-1"}
        token = self.token([Role.VOLUNTEER], tenant.slug)
        response = self.http.post(
            f"{self.platform.url('registry')}/tenants/{tenant.slug}/volunteers",
            json=body,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"demo-self-{tenant.slug}"},
        )
        if response.status_code not in (200, 201):
            raise DemoError(
                f"demo: the demo volunteer's registration answered {response.status_code}: {response.text[:300]}"
            )
        self.say(f"{tenant.name}: {account.name} registered as a volunteer, signed in as {account.username}")

    async def publish_commands(self, tenant: DemoTenant, system: str, commands: list[ReportNeed]) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.platform.stack.kafka_bootstrap, enable_idempotence=False, linger_ms=5
        )
        await producer.start()
        try:
            for command in commands:
                event = new_event(
                    data=command,
                    tenant=tenant.slug,
                    subject=command.external_ref,
                    version=1,
                    source=f"/partners/{tenant.slug}/{system}",
                )
                await producer.send(partner_inbound_topic(tenant.slug), to_bytes(event), key=event.key)
            await producer.flush()
        finally:
            await producer.stop()

    async def register_volunteers(self, reports: list[TenantReport]) -> None:
        """A partner system registers each municipality's volunteers over HTTPS: personal data from
        partners never goes on a Kafka topic (a log Lotse cannot erase a person from)."""
        for report in reports:
            volunteers = demo_volunteers(report.tenant, VOLUNTEERS_PER_TENANT, report.organisation_ids, self.today)
            await self.register_with_partner_token(report.tenant.slug, volunteers)
            self.say(f"{report.tenant.name}: a partner system registered {len(volunteers)} volunteers over HTTPS")

    async def register_with_partner_token(self, tenant: str, volunteers: list[RegisterVolunteer]) -> None:
        """With the partner's token (client credentials) and an idempotency key per volunteer, a few
        at a time."""
        url = f"{self.platform.url('registry')}/tenants/{tenant}/partner/volunteers/register"
        token = self.token([Role.PARTNER], tenant)
        in_flight = asyncio.Semaphore(REGISTRATIONS_IN_FLIGHT)

        async def register(client: httpx.AsyncClient, volunteer: RegisterVolunteer) -> None:
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"demo-{volunteer.external_ref}"}
            async with in_flight:
                response = await client.post(url, json=volunteer.model_dump(mode="json"), headers=headers)
            if response.status_code not in (200, 201):
                raise DemoError(
                    f"demo: registering {volunteer.external_ref} answered {response.status_code}: {response.text[:300]}"
                )

        async with httpx.AsyncClient(timeout=30.0) as client:
            await asyncio.gather(*(register(client, volunteer) for volunteer in volunteers))

    def wait_for_volunteers(self, report: TenantReport) -> None:
        coordinator = self.token([Role.COORDINATOR], report.tenant.slug)
        url = f"{self.platform.url('registry')}/tenants/{report.tenant.slug}/statistics"

        def all_registered() -> bool:
            statistics = self._call("GET", url, coordinator)
            # null while fewer than five (the registry withholds small counts)
            return int(statistics["volunteers"]["active"] or 0) >= VOLUNTEERS_PER_TENANT

        _wait(f"the registration of {report.tenant.name}'s volunteers", all_registered)
        listing = self._call(
            "GET", f"{self.platform.url('registry')}/tenants/{report.tenant.slug}/volunteers?limit=5", coordinator
        )
        report.volunteer_ids = [item["volunteer_id"] for item in listing["items"]]
        self.say(f"{report.tenant.name}: {VOLUNTEERS_PER_TENANT} volunteers registered with consent")

    def check_certificates(self, report: TenantReport) -> None:
        """The office has seen the certificates the volunteers declared (only a checked one counts
        for a need that requires it): it records a check of each that is still valid."""
        slug, registry = report.tenant.slug, self.platform.url("registry")
        coordinator, today = self.token([Role.COORDINATOR], slug), self.today.isoformat()
        checked, cursor = 0, ""
        while True:
            page = self._call(
                "GET", f"{registry}/tenants/{slug}/volunteers", coordinator, params={"limit": 200, "cursor": cursor}
            )
            for item in page["items"]:
                for certificate in item.get("certificates") or []:
                    valid_until = certificate.get("valid_until")
                    if valid_until is None or valid_until < today:
                        continue
                    body = {"kind": certificate["kind"], "seen_on": today, "valid_until": valid_until}
                    path = f"{registry}/tenants/{slug}/volunteers/{item['volunteer_id']}/certificate-checks"
                    self._call("POST", path, coordinator, json=body)
                    checked += 1
            cursor = page["next_cursor"] or ""
            if not cursor:
                break
        self.say(f"{report.tenant.name}: the office checked {checked} certificates the volunteers had shown")

    async def publish_needs(self, reports: list[TenantReport]) -> None:
        for index, report in enumerate(reports):
            needs = demo_needs(report.tenant, NEEDS_PER_TENANT, report.organisation_ids, self.today)
            if index == 0:
                needs.append(unfittable_need(report.tenant, report.organisation_ids, self.today))
            await self.publish_commands(report.tenant, "case-management", list(needs))
            self.say(f"{report.tenant.name}: case management reported {len(needs)} needs on Kafka")

    def _proposal_links(self, tenant: DemoTenant) -> list[str]:
        messages = self.http.get(f"{self.platform.mailbox_url}/messages").json()
        links = []
        for summary in messages:
            if not any(address.endswith(f"@{tenant.slug}.example") for address in summary["to"]):
                continue
            detail = self.http.get(f"{self.platform.mailbox_url}/messages/{summary['id']}").json()
            match = ACCEPT_LINK.search(detail.get("text") or "")
            if match:
                links.append(match.group(1))
        return links

    def accept_some_proposals(self, report: TenantReport) -> None:
        links = _wait(
            f"proposal emails for {report.tenant.name}",
            lambda: found if len(found := self._proposal_links(report.tenant)) >= ACCEPTS_PER_TENANT else None,
        )
        for link in links[:ACCEPTS_PER_TENANT]:
            page = self.http.get(link, params={"choice": "accept"})
            confirmed = self.http.post(link, data={"choice": "accept"})
            if page.status_code == 200 and confirmed.status_code == 200:
                report.accepted += 1
        self.say(
            f"{report.tenant.name}: {len(links)} proposal emails sent; "
            f"{report.accepted} volunteers accepted through the link in their email"
        )

    def wait_for_escalation(self, report: TenantReport) -> None:
        def escalated() -> bool:
            messages = self.http.get(f"{self.platform.mailbox_url}/messages").json()
            return any(report.tenant.coordination_email in summary["to"] for summary in messages)

        _wait(f"the escalation to {report.tenant.name}'s coordination office", escalated)
        report.escalated = True
        self.say(
            f"{report.tenant.name}: a need nobody can take (Tigrinya) was escalated to "
            f"{report.tenant.coordination_email}"
        )
