"""Run a service process: JSON logs, traces, then its FastAPI app under uvicorn until SIGTERM."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from lotse_runtime.settings import PlatformSettings
from lotse_runtime.structured_logging import configure_logging
from lotse_runtime.tracing import configure_tracing

SettingsT = TypeVar("SettingsT", bound=PlatformSettings)


def serve(service: str, settings: SettingsT, create_app: Callable[[SettingsT], FastAPI], host: str, port: int) -> None:
    configure_logging(service, settings.log_level)
    configure_tracing(service)
    # uvicorn's own logging config would replace the JSON logs.
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None)
