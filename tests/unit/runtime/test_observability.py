"""Logs name the trace they were written in, in both renderings; request spans keep capabilities
and client addresses out; lone database calls start no trace."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import RequestInfo
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased
from opentelemetry.trace import SpanKind

from lotse_cli.supervisor import terminal_printer
from lotse_contracts import Envelope, TenantOnboarded, new_event, to_bytes
from lotse_runtime.consumer import Delivery, EventPipeline, RetryPolicy
from lotse_runtime.structured_logging import configure_logging, console_level
from lotse_runtime.tracing import NoLoneClientCalls, _redact_client_url, instrument_app, with_trace_context

TOKEN = "capability-token-0123456789"


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back for the tests that follow."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    config = structlog.get_config()
    yield
    root.handlers[:], root.level = handlers, level
    structlog.configure(**config)
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """Spans of the process-wide provider (set once per process: by this or an earlier test)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    collected = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(collected))
    return collected


def _ids(span: trace.Span) -> tuple[str, str]:
    context = span.get_span_context()
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)


def test_json_lines_within_a_span_carry_its_trace_and_span_id_and_others_none(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("registry", "INFO", "json")
    with TracerProvider().get_tracer("test").start_as_current_span("request") as span:
        structlog.get_logger("test").info("in a span", tenant="trier")
        logging.getLogger("uvicorn.error").warning("from the standard library")
    structlog.get_logger("test").info("outside")

    inside, foreign, outside = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    trace_id, span_id = _ids(span)
    assert (inside["trace_id"], inside["span_id"], inside["service"]) == (trace_id, span_id, "registry")
    assert (foreign["trace_id"], foreign["logger"], foreign["level"]) == (trace_id, "uvicorn.error", "warning")
    assert "trace_id" not in outside and "span_id" not in outside


def test_console_lines_are_one_readable_line_with_their_level_and_trace_uncoloured_off_a_terminal(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("registry", "INFO", "console")
    with TracerProvider().get_tracer("test").start_as_current_span("request") as span:
        structlog.get_logger("test").warning("outbox relay pass failed", relay="registry")
        logging.getLogger("uvicorn.error").info("Application startup complete.")

    warning, info = capsys.readouterr().out.splitlines()
    trace_id, _ = _ids(span)
    assert (console_level(warning), console_level(info)) == ("warning", "info")
    assert "outbox relay pass failed" in warning and "relay=registry" in warning and f"trace_id={trace_id}" in warning
    assert "Application startup complete." in info and "[uvicorn.error]" in info
    assert "\033[" not in warning + info  # captured output is no terminal
    assert "service=" not in warning  # the supervisor's prefix names it
    assert console_level('{"event": "http request", "level": "info"}') is None
    assert console_level("Traceback (most recent call last):") is None


def test_the_terminal_gets_warnings_errors_and_other_lines_and_the_log_file_keeps_the_rest() -> None:
    printed: list[str] = []
    plain = terminal_printer("registry", 0, printed.append, colours=False)
    for line in (
        "12:00:01 [info     ] http request                   method=GET",
        "12:00:02 [debug    ] detail",
        "12:00:03 [warning  ] event processing failed, retrying attempt=1",
        "12:00:04 [error    ] delivery attempt crashed",
        "Traceback (most recent call last):",
    ):
        plain(line)
    assert printed == [
        "registry     | 12:00:03 [warning  ] event processing failed, retrying attempt=1",
        "registry     | 12:00:04 [error    ] delivery attempt crashed",
        "registry     | Traceback (most recent call last):",
    ]

    coloured: list[str] = []
    terminal_printer("matching", 1, coloured.append, colours=True)("12:00:03 [warning  ] slow")
    terminal_printer("matching", 1, coloured.append, colours=True)("smtp sink: ready")
    assert coloured[0].startswith("\033[35mmatching") and "\033[33m12:00:03 [warning  ] slow\033[0m" in coloured[0]
    assert coloured[1].endswith("|\033[0m smtp sink: ready")


def test_a_request_span_names_the_route_and_keeps_the_path_query_and_client_address_out(
    exporter: InMemorySpanExporter,
) -> None:
    app = FastAPI()

    @app.get("/answers/{token}")
    async def answer(token: str) -> dict[str, str]:
        return {"ok": "yes"}

    instrument_app(app)
    with TestClient(app) as client:
        assert client.get(f"/answers/{TOKEN}", params={"choice": TOKEN}).status_code == 200
        assert client.get("/health").status_code == 404  # probes make no spans, answered or not

    (server,) = [span for span in exporter.get_finished_spans() if span.kind == SpanKind.SERVER]
    assert server.name == "GET /answers/{token}"
    attributes = dict(server.attributes or {})
    assert attributes["http.route"] == "/answers/{token}"
    assert not [value for value in attributes.values() if TOKEN in str(value)], attributes
    addresses = {key: value for key, value in attributes.items() if key in {"net.peer.ip", "client.address"}}
    assert addresses and set(addresses.values()) == {"(redacted)"}, attributes  # TestClient's is "testclient"


async def test_a_webhook_span_keeps_the_origin_of_a_punycode_host_idna_2008_cannot_decode(
    exporter: InMemorySpanExporter,
) -> None:
    # xn--ls8h (an emoji label) passes the URL parsers; decoding it raised out of the request hook,
    # so the delivery failed with an error no handler expected.
    url = httpx.URL(f"https://xn--ls8h.example/hook?key={TOKEN}")
    with trace.get_tracer("test").start_as_current_span("POST", attributes={"url.full": str(url)}) as span:
        await _redact_client_url(span, RequestInfo(b"POST", url, httpx.Headers(), None, {}))
    (finished,) = [done for done in exporter.get_finished_spans() if done.name == "POST"]
    assert dict(finished.attributes or {})["url.full"] == "https://xn--ls8h.example"


def test_a_database_call_outside_any_request_or_message_starts_no_trace() -> None:
    tracer = TracerProvider(sampler=ParentBased(root=NoLoneClientCalls())).get_tracer("test")
    with tracer.start_as_current_span("poll", kind=SpanKind.CLIENT) as lone:
        assert not lone.is_recording()
    with (
        tracer.start_as_current_span("process event", kind=SpanKind.CONSUMER) as consumer,
        tracer.start_as_current_span("registry.find", kind=SpanKind.CLIENT) as call,
    ):
        assert consumer.is_recording() and call.is_recording()


async def test_a_consumer_names_the_events_trace_also_in_the_retry_warnings_between_its_spans() -> None:
    with TracerProvider().get_tracer("test").start_as_current_span("partner publishes") as origin:
        event = with_trace_context(
            new_event(data=TenantOnboarded.example(), tenant="trier", subject="trier", version=1, source="/test")
        )
    failures = [ValueError("not yet")]

    async def handle(_: Envelope[Any], __: Delivery) -> None:
        if failures:
            raise failures.pop()

    async def no_dead_letters(*_: object) -> None:
        raise AssertionError("nothing should be dead-lettered")

    pipeline = EventPipeline("trace-test", handle, no_dead_letters, RetryPolicy(first_backoff_seconds=0.01))
    with structlog.testing.capture_logs() as logged:
        await pipeline.handle(to_bytes(event), Delivery("lotse.registry.tenants.v1", 0, 0, event.key))

    retry = next(line for line in logged if line["event"] == "event processing failed, retrying")
    assert retry["trace_id"] == _ids(origin)[0]
