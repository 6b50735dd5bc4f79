"""``python -m lotse_notifications``: run the service with uvicorn."""

from __future__ import annotations

from lotse_notifications.app import create_app
from lotse_notifications.settings import NotificationSettings
from lotse_runtime.serve import serve


def main() -> None:
    settings = NotificationSettings()
    serve("notifications", settings, create_app, settings.http_host, settings.http_port)


if __name__ == "__main__":
    main()
