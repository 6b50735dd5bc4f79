"""``python -m lotse_portal``: the portal's pages."""

from __future__ import annotations

from lotse_portal.app import create_app
from lotse_portal.settings import PortalSettings
from lotse_runtime.serve import serve
from lotse_runtime.settings import load_settings


def main() -> None:
    settings = load_settings(PortalSettings, "portal")
    serve("portal", settings, create_app, settings.http_host, settings.http_port)


if __name__ == "__main__":
    main()
