"""The broker login of services (FastStream) and of the ops CLI (plain aiokafka) come from the
same LOTSE_KAFKA_* settings."""

from __future__ import annotations

import ssl

import pytest

from lotse_cli import kafka_ops
from lotse_runtime.kafka import client_security, make_broker
from lotse_runtime.settings import PlatformSettings


def settings(**values: str) -> PlatformSettings:
    return PlatformSettings.model_validate(values)


def test_a_plaintext_broker_needs_no_login() -> None:
    assert client_security(settings(kafka_security_protocol="PLAINTEXT")) == {}


def test_sasl_ssl_logs_in_with_scram_over_tls() -> None:
    options = client_security(
        settings(kafka_security_protocol="SASL_SSL", kafka_username="lotse-ops", kafka_password="secret")
    )
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("lotse-ops", "secret")
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_sasl_without_credentials_is_refused_for_services_and_tools_alike() -> None:
    incomplete = settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_username="lotse-ops")
    with pytest.raises(ValueError, match="LOTSE_KAFKA_PASSWORD"):
        client_security(incomplete)
    with pytest.raises(ValueError, match="LOTSE_KAFKA_PASSWORD"):
        make_broker(incomplete, "registry")


def test_the_cli_takes_the_operators_login_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTSE_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("LOTSE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("LOTSE_KAFKA_USERNAME", "lotse-ops")
    monkeypatch.setenv("LOTSE_KAFKA_PASSWORD", "from-a-secret")
    assert kafka_ops.login() == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "lotse-ops",
        "sasl_plain_password": "from-a-secret",
    }
