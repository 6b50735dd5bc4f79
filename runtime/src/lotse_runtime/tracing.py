"""OpenTelemetry traces that follow an event across Kafka hops.

The trace context travels inside the event itself, as the CloudEvents distributed-tracing
attributes ``traceparent`` / ``tracestate``: the outbox stamps them when an event is stored
(so the relay, which publishes later and elsewhere, does not matter), and the consumer
continues the trace when it processes the event. Spans are exported over OTLP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, and otherwise only created.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from lotse_contracts import Envelope

tracer = trace.get_tracer("lotse")


def configure_tracing(service: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": f"lotse-{service}"}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def with_trace_context(event: Envelope[Any]) -> Envelope[Any]:
    """The event stamped with the current trace context, unless it carries one already."""
    if event.traceparent:
        return event
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if "traceparent" not in carrier:
        return event
    return event.model_copy(update={"traceparent": carrier["traceparent"], "tracestate": carrier.get("tracestate")})


@contextmanager
def processing_span(event: Envelope[Any], consumer: str, topic: str) -> Iterator[trace.Span]:
    """A consumer span that continues the producer's trace."""
    carrier = {"traceparent": event.traceparent} if event.traceparent else {}
    if event.tracestate:
        carrier["tracestate"] = event.tracestate
    with tracer.start_as_current_span(
        f"process {event.type}",
        context=propagate.extract(carrier),
        kind=trace.SpanKind.CONSUMER,
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
