"""Run the matching service: `python -m lotse_matching`."""

from __future__ import annotations

from lotse_matching.app import create_app
from lotse_matching.settings import MatchingSettings
from lotse_runtime.serve import serve
from lotse_runtime.settings import load_settings


def main() -> None:
    settings = load_settings(MatchingSettings, "matching")
    serve("matching", settings, create_app, settings.http_host, settings.http_port)


if __name__ == "__main__":
    main()
