"""A trace follows an event: the consumer continues the producer's trace, and what it writes to
the outbox carries the same trace onwards."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts import Envelope, NeedCancelled, TenantOnboarded, new_event, parse_event, to_bytes
from lotse_runtime.consumer import Delivery, EventPipeline
from lotse_runtime.mongo import in_transaction
from lotse_runtime.outbox import OUTBOX_COLLECTION, append_event
from lotse_runtime.tracing import with_trace_context

_exporter = InMemorySpanExporter()


def _provider() -> None:
    # The global provider can be set once per process; later calls are ignored.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_exporter))
    trace.set_tracer_provider(provider)


_provider()


async def test_the_trace_continues_from_consumed_event_to_produced_event(
    mongo_client: AsyncMongoClient[dict[str, Any]], database: AsyncDatabase[dict[str, Any]]
) -> None:
    _exporter.clear()
    with trace.get_tracer("partner").start_as_current_span("partner publishes") as origin:
        incoming = new_event(
            data=TenantOnboarded.example(), tenant="trier", subject="trier", version=1, source="/lotse/registry"
        )
        incoming = with_trace_context(incoming)
    origin_trace = origin.get_span_context().trace_id
    assert incoming.traceparent and f"{origin_trace:032x}" in incoming.traceparent

    async def handle(event: Envelope[Any], delivery: Delivery) -> None:
        follow_up = new_event(
            data=NeedCancelled.example(),
            tenant=event.tenant,
            subject=str(NeedCancelled.example().need_id),
            version=1,
            source="/lotse/registry",
            causationid=event.id,
        )

        async def write(session: AsyncClientSession) -> None:
            await append_event(database, session, "lotse.registry.needs.v1", follow_up)

        await in_transaction(mongo_client, write)

    async def no_dead_letters(*_: object) -> None:
        raise AssertionError("nothing should be dead-lettered")

    pipeline = EventPipeline("tracing-test", handle, no_dead_letters)
    await pipeline.handle(to_bytes(incoming), Delivery("lotse.registry.tenants.v1", 0, 0, incoming.key))

    (stored,) = await database[OUTBOX_COLLECTION].find().to_list()
    produced = parse_event(bytes(stored["value"]))
    assert produced.traceparent is not None
    assert produced.traceparent.split("-")[1] == f"{origin_trace:032x}"
    assert produced.traceparent != incoming.traceparent
    spans = [span for span in _exporter.get_finished_spans() if span.context.trace_id == origin_trace]
    consumer_span = next(span for span in spans if span.name == f"process {incoming.type}")
    assert consumer_span.attributes is not None and consumer_span.attributes["lotse.tenant"] == "trier"
    assert consumer_span.parent is not None and consumer_span.parent.span_id == origin.get_span_context().span_id
