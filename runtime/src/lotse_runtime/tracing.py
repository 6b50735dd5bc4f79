"""OpenTelemetry traces that follow a request end to end: HTTP, MongoDB, Kafka hops, webhooks.

The trace context travels inside the event itself, as the CloudEvents distributed-tracing
attributes ``traceparent`` / ``tracestate``: the outbox stamps them when an event is stored
(so the relay, which publishes later and elsewhere, does not matter), and the consumer
continues the trace when it processes the event. Spans are exported over OTLP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, and otherwise only created.

Beside the events, the libraries make spans of their own once ``instrument_libraries`` and
``instrument_app`` have run (``serve`` calls both): an incoming HTTP request (FastAPI), every
MongoDB command (PyMongo's command listener, which the async client calls too) and every outgoing
HTTP call (httpx: the webhooks). The request's span is current while a route appends to the outbox,
so the event continues the request's trace. Span attributes never hold what the access log leaves
out: no raw path, query or client address, and of a webhook URL only scheme and host.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor, RequestInfo
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

from lotse_contracts import Envelope

tracer = trace.get_tracer("lotse")

# Health probes and scrapes would be most of the spans and tell nothing.
UNTRACED_URLS = "/health,/ready,/metrics"
# Request attributes that may hold a capability (answer-link tokens in the path, a query) or
# personal data (the client address); the route template (``http.route``) says what was called.
_SERVER_REQUEST_DETAILS = (
    "http.target",
    "http.url",
    "url.path",
    "url.query",
    "url.full",
    "http.client_ip",
    "net.peer.ip",
    "net.peer.port",
    "client.address",
    "client.port",
    "network.peer.address",
    "network.peer.port",
)
# A webhook URL is the partner's secret as often as not (tokens in path or query).
_CLIENT_URL_DETAILS = ("http.url", "url.full", "http.target", "url.path", "url.query")
REDACTED = "(redacted)"


class NoLoneClientCalls(Sampler):
    """A database command or outgoing call with no request, message or delivery around it (the
    outbox relay's and the delivery worker's polling) would be a trace of its own, several a second:
    such traces are not recorded. Everything else starts a trace."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "NoLoneClientCalls"


def configure_tracing(service: str) -> None:
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"lotse-{service}"}),
        sampler=ParentBased(root=NoLoneClientCalls()),
    )
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def instrument_libraries() -> None:
    """MongoDB commands and outgoing HTTP calls make spans. Process-wide, once (repeats are no-ops);
    before the first MongoDB client is created, which is the only kind PyMongo's listener sees."""
    PymongoInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument(async_request_hook=_redact_client_url)


def instrument_app(app: FastAPI) -> None:
    """Each HTTP request to ``app`` is a server span, the parent of what the route does."""
    FastAPIInstrumentor.instrument_app(
        app,
        server_request_hook=_redact_server_request,
        excluded_urls=UNTRACED_URLS,
        exclude_spans=["receive", "send"],  # one span per request, not one per ASGI message
    )


def _redact(span: trace.Span, keys: tuple[str, ...], value: str) -> None:
    # Only the SDK's spans show their attributes; a non-recording span holds none anyway.
    present = getattr(span, "attributes", None) or {}
    span.set_attributes({key: value for key in keys if key in present})


def _redact_server_request(span: trace.Span, scope: dict[str, Any]) -> None:
    _redact(span, _SERVER_REQUEST_DETAILS, REDACTED)


async def _redact_client_url(span: trace.Span, request: RequestInfo) -> None:
    if isinstance(request.url, httpx.URL):
        # The host as sent (punycode): ``.host`` decodes IDNA and raises on a label IDNA 2008 refuses.
        origin = f"{request.url.scheme}://{request.url.raw_host.decode('ascii', errors='replace')}"
    else:  # httpcore's (scheme, host, port, target)
        origin = f"{request.url[0].decode()}://{request.url[1].decode()}"
    _redact(span, _CLIENT_URL_DETAILS, origin)


def current_trace_context() -> dict[str, str]:
    """The current trace context as W3C headers (``traceparent``, ``tracestate``), to be stored
    with work that is done later (a delivery) and continued by ``continuing_span``."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def continuing_span(
    name: str, carrier: Mapping[str, str] | None, kind: SpanKind = SpanKind.INTERNAL, attributes: Attributes = None
) -> Iterator[trace.Span]:
    """A span in the trace ``carrier`` names (a new trace without one), current while it lasts."""
    with tracer.start_as_current_span(
        name, context=propagate.extract(dict(carrier or {})), kind=kind, attributes=attributes
    ) as span:
        yield span


def event_trace_context(event: Envelope[Any]) -> dict[str, str]:
    """The trace context an event carries (CloudEvents distributed-tracing extension)."""
    carrier = {"traceparent": event.traceparent} if event.traceparent else {}
    if event.tracestate:
        carrier["tracestate"] = event.tracestate
    return carrier


def event_trace_id(event: Envelope[Any]) -> str | None:
    """The id of the trace an event belongs to (for log lines written outside its span)."""
    context = trace.get_current_span(propagate.extract(event_trace_context(event))).get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


def with_trace_context(event: Envelope[Any]) -> Envelope[Any]:
    """The event stamped with the current trace context, unless it carries one already."""
    if event.traceparent:
        return event
    carrier = current_trace_context()
    if "traceparent" not in carrier:
        return event
    return event.model_copy(update={"traceparent": carrier["traceparent"], "tracestate": carrier.get("tracestate")})


@contextmanager
def processing_span(event: Envelope[Any], consumer: str, topic: str) -> Iterator[trace.Span]:
    """A consumer span that continues the producer's trace."""
    with continuing_span(
        f"process {event.type}",
        event_trace_context(event),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": consumer,
            "messaging.message.id": str(event.id),
            "lotse.tenant": event.tenant,
            "lotse.correlation_id": event.correlationid,
        },
    ) as span:
        yield span


@contextmanager
def publishing_span(event_type: str, topic: str, message_id: str, carrier: Mapping[str, str] | None) -> Iterator[None]:
    """The outbox relay's producer span of one event, in the trace that stored the event."""
    attributes = {"messaging.system": "kafka", "messaging.destination.name": topic, "messaging.message.id": message_id}
    with continuing_span(f"publish {event_type}", carrier, kind=SpanKind.PRODUCER, attributes=attributes):
        yield
