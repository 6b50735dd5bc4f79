"""What each service shows beyond its API: the OpenAPI document with /docs and /redoc, and
/metrics on the API port, are on in development and off in production unless switched on."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from lotse_matching.app import create_app as matching_app
from lotse_matching.settings import MatchingSettings
from lotse_notifications.app import create_app as notifications_app
from lotse_notifications.settings import NotificationSettings
from lotse_registry.app import create_app as registry_app
from lotse_registry.settings import RegistrySettings
from lotse_runtime.secrets import secret_fields
from lotse_runtime.settings import PlatformSettings

SERVICES: dict[str, tuple[type[PlatformSettings], Callable[[Any], FastAPI]]] = {
    "registry": (RegistrySettings, registry_app),
    "matching": (MatchingSettings, matching_app),
    "notifications": (NotificationSettings, notifications_app),
}
DOCUMENT_PATHS = ("/openapi.json", "/docs", "/redoc")


def _client(service: str, **settings: Any) -> TestClient:
    """The service's app, not started (these routes need no connection), with its secrets set."""
    settings_class, create_app = SERVICES[service]
    secrets_set: dict[str, Any] = {name: SecretStr(secrets.token_urlsafe(32)) for name in secret_fields(settings_class)}
    if settings_class is NotificationSettings:
        secrets_set["answer_link_base_url"] = "https://lotse.example"  # required in production
    return TestClient(create_app(settings_class(**secrets_set, **settings)))


@pytest.mark.parametrize("service", list(SERVICES))
def test_production_serves_neither_the_api_documents_nor_metrics_on_the_api_port(service: str) -> None:
    client = _client(service, env="production")
    for path in (*DOCUMENT_PATHS, "/metrics"):
        assert client.get(path).status_code == 404, path
    assert client.get("/health").status_code == 200
    # The document still exists for code (the contract tests and the API fuzz read it).
    assert client.app.openapi()["paths"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("service", list(SERVICES))
def test_development_serves_the_api_documents_and_metrics(service: str) -> None:
    client = _client(service, env="development")
    for path in DOCUMENT_PATHS:
        assert client.get(path).status_code == 200, path
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "lotse_" in metrics.text


@pytest.mark.parametrize("service", list(SERVICES))
def test_each_switch_overrides_its_default(service: str) -> None:
    opened = _client(service, env="production", api_docs=True, metrics_on_api_port=True)
    assert opened.get("/docs").status_code == 200
    assert opened.get("/openapi.json").json()["paths"]
    assert opened.get("/metrics").status_code == 200
    closed = _client(service, env="development", api_docs=False, metrics_on_api_port=False)
    for path in (*DOCUMENT_PATHS, "/metrics"):
        assert closed.get(path).status_code == 404, path
