"""``python -m lotse_notifications``: run the service with uvicorn."""

from __future__ import annotations

from lotse_notifications.app import create_app
from lotse_notifications.settings import NotificationSettings
from lotse_runtime.serve import serve
from lotse_runtime.settings import load_settings


def main() -> None:
    settings = load_settings(NotificationSettings, "notifications")
    serve("notifications", settings, create_app, settings.http_host, settings.http_port)


if __name__ == "__main__":
    main()
