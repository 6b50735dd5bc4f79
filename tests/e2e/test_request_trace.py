"""One partner HTTP command is one trace across the three services, as processes that export their
spans over OTLP to a collector the test runs, and each service's log lines carry that trace."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from lotse_cli.demo import ACCEPT_LINK
from lotse_cli.supervisor import Platform, running_platform
from lotse_contracts import MatchProposedSealed, NeedOpened
from lotse_contracts.topics import MATCHING_WORK, NEEDS
from lotse_runtime.auth import Role
from tests.e2e.journey import Municipality, eventually, free_ports
from tests.integration.notifications.support import WebhookReceiver
from tests.support import tokens
from tests.support.otlp_collector import CollectedSpan, OtlpCollector

REPORT_ROUTE = "/tenants/{tenant}/partner/needs/report"
# A partner's webhook URL often holds its own secret; no span may carry it.
URL_SECRET = "partner-url-secret"


@pytest.fixture
def collector() -> Iterator[OtlpCollector]:
    running = OtlpCollector().start()
    yield running
    running.stop()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver("webhook-signing-secret") as running:
        yield running


@pytest.fixture
def traced_platform(collector: OtlpCollector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    # The service processes inherit this environment: they export to the collector, promptly.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    issuer = tokens.issuer().auth_config()
    with running_platform(ports=free_ports(), state_dir=tmp_path, echo=None, persistent=False, auth=issuer) as platform:
        yield platform


def _log_lines(platform: Platform, service: str) -> list[dict[str, Any]]:
    lines = (platform.home / "logs" / f"{service}.log").read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_a_partner_http_command_is_one_trace_across_registry_matching_and_notifications(
    traced_platform: Platform, collector: OtlpCollector, receiver: WebhookReceiver
) -> None:
    town = Municipality(traced_platform, "trace-town")
    town.onboard()
    hook = {"url": f"{receiver.url}?token={URL_SECRET}", "secret": receiver.secret, "event_types": []}
    registered = town.call("POST", "notifications", "/webhooks", town.token(Role.COORDINATOR), json=hook)
    assert registered.status_code == 201, registered.text
    volunteer_id, email, _ = town.register_volunteer("Amira", "ar")
    # Topics are not ordered among each other: a need read before its volunteer is proposed when
    # the volunteer arrives, in the registration's trace. The chain under test needs them in order.
    client: MongoClient[dict[str, Any]]
    with MongoClient(traced_platform.stack.mongo_url) as client:
        known = {"_id": f"{town.slug}:{volunteer_id}"}
        eventually("matching to know the volunteer", lambda: client["matching"]["volunteers"].find_one(known))
        eventually("notifications to know the volunteer", lambda: client["notifications"]["contacts"].find_one(known))
    report = json.loads(town.need_command("trace-1"))["data"]
    partner = town.token(Role.PARTNER, subject="case-management")

    response = town.http.post(
        f"{traced_platform.url('registry')}/tenants/{town.slug}/partner/needs/report",
        json=report,
        headers={"Authorization": f"Bearer {partner}", "Idempotency-Key": "trace-1"},
    )
    assert response.status_code == 201, response.text
    eventually("the proposal email", lambda: [m for m in town.mails_to(email) if ACCEPT_LINK.search(m["text"] or "")])

    def request_span() -> CollectedSpan | None:
        return next(
            (
                span
                for span in collector.spans()
                if span.service == "lotse-registry"
                and span.kind == "SERVER"
                and span.attributes.get("http.route") == REPORT_ROUTE
            ),
            None,
        )

    server = eventually("the registry's span of the request", request_span)
    in_trace: list[CollectedSpan] = []

    def one(service: str, kind: str, name: str, topic: str | None = None) -> CollectedSpan:
        # Each process exports its spans in batches of its own: a later span of the chain may
        # reach the collector before an earlier one, so each is waited for.
        def found() -> CollectedSpan | None:
            in_trace[:] = [span for span in collector.spans() if span.trace_id == server.trace_id]
            wanted = (
                span
                for span in in_trace
                if (span.service, span.kind, span.name) == (service, kind, name)
                and topic in {None, span.attributes.get("messaging.destination.name")}
            )
            return next(wanted, None)

        return eventually(f"{service}'s {kind} span {name!r} in the request's trace", found)

    # The request's route stores the event, the relay publishes it, matching processes it and
    # proposes the volunteer, notifications processes the proposal and sends the email.
    published = one("lotse-registry", "PRODUCER", f"publish {NeedOpened.event_type}")
    # Matching reads it twice: the replica that read the needs topic forwards it to the work
    # topic, and the tenant's owner applies it there (issue 19); both continue the event's trace.
    forwarding = one("lotse-matching", "CONSUMER", f"process {NeedOpened.event_type}", NEEDS.name)
    matched = one("lotse-matching", "CONSUMER", f"process {NeedOpened.event_type}", MATCHING_WORK.name)
    # The proposal goes with its fit sealed with the volunteer's key (issue 18).
    one("lotse-matching", "PRODUCER", f"publish {MatchProposedSealed.event_type}")
    told = one("lotse-notifications", "CONSUMER", f"process {MatchProposedSealed.event_type}")
    sent = one("lotse-notifications", "INTERNAL", "deliver email")
    assert published.parent_span_id == server.span_id
    assert matched.parent_span_id == server.span_id and forwarding.parent_span_id == server.span_id
    assert told.parent_span_id == matched.span_id
    assert sent.parent_span_id == told.span_id
    # The need is forwarded to the partner's webhook: an outgoing HTTP call of the trace, whose
    # context travels on to the partner, and whose URL is reduced to where it went.
    forwarded = one("lotse-notifications", "INTERNAL", "deliver webhook")
    (call,) = [
        span
        for span in in_trace
        if span.kind == "CLIENT" and span.parent_span_id == forwarded.span_id and "db.system" not in span.attributes
    ]
    assert call.name == "POST", call
    assert not [value for value in call.attributes.values() if URL_SECRET in str(value)], call.attributes
    assert {c.headers.get("traceparent", "").split("-")[1] for c in receiver.calls} == {server.trace_id}
    # Database commands are spans of the trace, in every service.
    for service in ("lotse-registry", "lotse-matching", "lotse-notifications"):
        assert any(
            span.service == service and span.kind == "CLIENT" and span.attributes.get("db.system") == "mongodb"
            for span in in_trace
        ), service
    # What the access log leaves out, the span leaves out too: the raw path names the tenant.
    assert not [value for value in server.attributes.values() if town.slug in str(value)], server.attributes

    # A log line of each service, written within the trace, names it.
    for service in ("registry", "matching", "notifications"):
        traced = [line for line in _log_lines(traced_platform, service) if line.get("trace_id") == server.trace_id]
        assert traced, service
        assert all(len(line["span_id"]) == 16 for line in traced)
    access = [line for line in _log_lines(traced_platform, "registry") if line.get("trace_id") == server.trace_id]
    assert any(line["event"] == "http request" and line["route"] == REPORT_ROUTE for line in access)
