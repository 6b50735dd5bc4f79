"""Logs for operators: one line per event, with context but never personal data.

Every line carries the service and, when it is written within a span, that span's ``trace_id``
and ``span_id``, so a line leads to its trace and back. Two renderings of the same lines:
``json`` (one object per line; the default and the production format) and ``console`` (one
readable line, coloured on a terminal; ``lotse up`` sets it). The standard library's loggers
(uvicorn, FastStream, aiokafka) go through the same processors, so every line has one shape.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Literal

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["json", "console"]

# How the console rendering begins: "12:00:01 [warning  ] ...", see ``console_level``.
CONSOLE_TIME_FORMAT = "%H:%M:%S"
_CONSOLE_LINE = re.compile(r"^\d\d:\d\d:\d\d \[(?P<level>[a-z]+)\s*\] ")


def add_trace_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """The current span's trace and span id (as W3C traceparent writes them), if there is one."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", trace.format_trace_id(context.trace_id))
        event_dict.setdefault("span_id", trace.format_span_id(context.span_id))
    return event_dict


def _drop_service(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # On a console the service is known (``lotse up`` prefixes each line with it).
    event_dict.pop("service", None)
    return event_dict


def console_level(line: str) -> str | None:
    """The level of a line in the console rendering, or None for any other line (a traceback)."""
    match = _CONSOLE_LINE.match(line)
    return match["level"] if match else None


def _pipeline(log_format: LogFormat) -> tuple[list[Processor], list[Processor]]:
    """What every line goes through, and how it is rendered."""
    shared: list[Processor] = [structlog.contextvars.merge_contextvars, structlog.processors.add_log_level]
    if log_format == "console":
        shared += [structlog.processors.TimeStamper(fmt=CONSOLE_TIME_FORMAT, utc=False), _drop_service]
        render: list[Processor] = [
            structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty(), exception_formatter=structlog.dev.plain_traceback)
        ]
    else:
        shared.append(structlog.processors.TimeStamper(fmt="iso", utc=True))
        render = [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    shared.append(add_trace_context)
    return shared, render


def configure_logging(service: str, level: str = "INFO", log_format: LogFormat = "json") -> None:
    shared, render = _pipeline(log_format)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
        )
    )
    logging.basicConfig(handlers=[handler], level=level.upper(), force=True)
    # FastStream logs every message at INFO; our consumer logs what matters.
    logging.getLogger("faststream").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, *render],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
