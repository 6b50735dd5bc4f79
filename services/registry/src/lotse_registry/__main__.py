"""``python -m lotse_registry``: the registry's HTTP API, consumers and outbox relay."""

from __future__ import annotations

import uvicorn

from lotse_registry.app import create_app
from lotse_registry.settings import RegistrySettings
from lotse_runtime.structured_logging import configure_logging
from lotse_runtime.tracing import configure_tracing


def main() -> None:
    settings = RegistrySettings()
    configure_logging("registry", settings.log_level)
    configure_tracing("registry")
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None)


if __name__ == "__main__":
    main()
