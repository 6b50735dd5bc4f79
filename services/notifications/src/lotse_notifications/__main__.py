"""``python -m lotse_notifications``: run the service with uvicorn."""

from __future__ import annotations

import uvicorn

from lotse_notifications.app import create_app
from lotse_notifications.settings import NotificationSettings
from lotse_runtime.structured_logging import configure_logging
from lotse_runtime.tracing import configure_tracing


def main() -> None:
    settings = NotificationSettings()
    configure_logging("notifications", settings.log_level)
    configure_tracing("notifications")
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None)


if __name__ == "__main__":
    main()
