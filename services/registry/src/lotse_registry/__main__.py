"""``python -m lotse_registry``: the registry's HTTP API, consumers and outbox relay."""

from __future__ import annotations

from lotse_registry.app import create_app
from lotse_registry.settings import RegistrySettings
from lotse_runtime.serve import serve
from lotse_runtime.settings import load_settings


def main() -> None:
    settings = load_settings(RegistrySettings, "registry")
    serve("registry", settings, create_app, settings.http_host, settings.http_port)


if __name__ == "__main__":
    main()
