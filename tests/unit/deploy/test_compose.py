"""docker-compose.yml against the Compose Specification schema, and the wiring the services need."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.unit.deploy.validation import ROOT, SERVICES, compose_errors

REQUIRED_ENVIRONMENT = {
    "LOTSE_KAFKA_BOOTSTRAP",
    "LOTSE_KAFKA_SECURITY_PROTOCOL",
    "LOTSE_KAFKA_SASL_MECHANISM",
    "LOTSE_MONGO_URL",
    "LOTSE_LOG_LEVEL",
    "LOTSE_JWT_ISSUER",
    "LOTSE_JWT_AUDIENCE",
    "LOTSE_JWT_DEV_KEY",
}
SERVICE_ENVIRONMENT = {
    "registry": set(),
    "matching": {"LOTSE_ANSWER_SECRET", "LOTSE_PUBLIC_BASE_URL"},
    "notifications": {"LOTSE_SMTP_HOST", "LOTSE_SMTP_PORT"},
}


@pytest.fixture
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_the_compose_file_satisfies_the_compose_specification(compose: dict[str, Any]) -> None:
    problems = compose_errors(compose)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda c: c["services"]["registry"].__setitem__("ports", "8001:8001"), id="ports-not-a-list"),
        pytest.param(lambda c: c["services"]["kafka"].__setitem__("enviroment", {}), id="misspelt-key"),
        pytest.param(
            lambda c: c["services"]["matching"]["depends_on"]["kafka"].__setitem__("condition", "service_ready"),
            id="unknown-condition",
        ),
        pytest.param(lambda c: c["services"]["mongodb"]["healthcheck"].__setitem__("retries", [3]), id="wrong-type"),
    ],
)
def test_a_broken_compose_file_is_refused(compose: dict[str, Any], mutate: Any) -> None:
    broken = copy.deepcopy(compose)
    mutate(broken)
    assert compose_errors(broken)


def test_infrastructure_stays_kafka_kraft_mongodb_replica_set_and_mailpit(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "--replSet" in services["mongodb"]["command"]
    assert "rs.initiate" in " ".join(services["mongodb"]["healthcheck"]["test"])
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")
    for service in services.values():
        assert not service.get("image", "x:1").endswith(":latest")


def test_the_topic_job_runs_once_after_kafka_is_healthy(compose: dict[str, Any]) -> None:
    job = compose["services"]["topics"]
    assert job["command"] == ["topics", "sync", "--bootstrap", "kafka:9092"]
    assert job["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert job["restart"] == "no"
    assert (ROOT / job["build"]["dockerfile"]).is_file()


@pytest.mark.parametrize(("name", "port"), list(SERVICES.items()))
def test_each_service_is_wired_by_environment_and_starts_in_health_order(
    compose: dict[str, Any], name: str, port: int
) -> None:
    service = compose["services"][name]
    assert service["build"] == {"context": ".", "dockerfile": f"deploy/docker/{name}.Dockerfile"}
    assert (ROOT / service["build"]["dockerfile"]).is_file()
    assert service["ports"] == [f"{port}:{port}"]
    environment = service["environment"]
    assert REQUIRED_ENVIRONMENT | SERVICE_ENVIRONMENT[name] <= set(environment)
    assert all(key.startswith("LOTSE_") for key in environment)
    assert environment["LOTSE_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert environment["LOTSE_MONGO_URL"] == f"mongodb://mongodb:27017/{name}?replicaSet=rs0"
    depends = service["depends_on"]
    assert depends["kafka"] == {"condition": "service_healthy"}
    assert depends["mongodb"] == {"condition": "service_healthy"}
    assert depends["topics"] == {"condition": "service_completed_successfully"}
    assert f"127.0.0.1:{port}/ready" in " ".join(service["healthcheck"]["test"])
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert service["stop_signal"] == "SIGTERM"


def test_notifications_sends_mail_to_mailpit(compose: dict[str, Any]) -> None:
    environment = compose["services"]["notifications"]["environment"]
    assert (environment["LOTSE_SMTP_HOST"], environment["LOTSE_SMTP_PORT"]) == ("mailpit", "1025")
    assert "mailpit" in compose["services"]["notifications"]["depends_on"]
