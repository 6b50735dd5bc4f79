"""Run the matching service: `python -m lotse_matching`."""

from __future__ import annotations

import uvicorn

from lotse_matching.app import create_app
from lotse_matching.settings import MatchingSettings
from lotse_runtime.structured_logging import configure_logging
from lotse_runtime.tracing import configure_tracing


def main() -> None:
    settings = MatchingSettings()
    configure_logging("matching", settings.log_level)
    configure_tracing("matching")
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None)


if __name__ == "__main__":
    main()
