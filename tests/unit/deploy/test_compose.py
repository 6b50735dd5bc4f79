"""docker-compose.yml against the Compose Specification schema, the wiring the services need, and
the broker's security: SASL/SCRAM per service and per partner, least-privilege ACLs."""

from __future__ import annotations

import copy
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lotse_cli.deploy_commands import compose_principals, load_tenants
from tests.unit.deploy.broker_security import (
    acl_problems,
    compose_broker_problems,
    compose_service_problems,
    credential_file_problems,
    parse_kafka_acls,
    read_env_file,
)
from tests.unit.deploy.validation import ROOT, SERVICES, compose_errors

COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE_TENANTS = load_tenants(COMPOSE_DIR / "tenants.yaml")
ACLS = (COMPOSE_DIR / "generated" / "kafka-acls.txt").read_text(encoding="utf-8")

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
    "matching": {"LOTSE_ANSWER_LINK_SECRET"},
    "notifications": {"LOTSE_SMTP_HOST", "LOTSE_SMTP_PORT", "LOTSE_ANSWER_LINK_SECRET", "LOTSE_ANSWER_LINK_BASE_URL"},
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


def test_the_topic_job_runs_once_after_kafka_is_healthy_inside_the_brokers_network(compose: dict[str, Any]) -> None:
    job = compose["services"]["topics"]
    assert job["command"] == ["topics", "sync", "--bootstrap", "127.0.0.1:19092"]
    assert job["network_mode"] == "service:kafka"
    assert job["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert job["restart"] == "no"
    assert (ROOT / job["build"]["dockerfile"]).is_file()


def test_the_kafka_setup_job_runs_the_script_once_after_kafka_is_healthy(compose: dict[str, Any]) -> None:
    job, kafka = compose["services"]["kafka-setup"], compose["services"]["kafka"]
    assert job["image"] == kafka["image"]
    assert job["network_mode"] == "service:kafka"
    assert job["volumes"] == ["./deploy/compose:/lotse:ro"]
    assert job["entrypoint"] == ["/bin/bash", "/lotse/kafka-setup.sh"]
    assert (COMPOSE_DIR / "kafka-setup.sh").is_file()
    assert job["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert job["restart"] == "no"
    script = (COMPOSE_DIR / "kafka-setup.sh").read_text()
    # The script's listeners are the broker's: loopback PLAINTEXT to set up, the SASL host listener to verify.
    advertised = kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "INTERNAL_LISTENER=${INTERNAL_LISTENER:-127.0.0.1:19092}" in script
    assert "INTERNAL://127.0.0.1:19092" in advertised
    assert "HOST_LISTENER=${HOST_LISTENER:-localhost:29092}" in script
    assert "HOST://localhost:29092" in advertised


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
    assert depends["kafka-setup"] == {"condition": "service_completed_successfully"}
    assert depends["topics"] == {"condition": "service_completed_successfully"}
    assert f"127.0.0.1:{port}/ready" in " ".join(service["healthcheck"]["test"])
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert service["stop_signal"] == "SIGTERM"


def test_notifications_sends_mail_to_mailpit(compose: dict[str, Any]) -> None:
    environment = compose["services"]["notifications"]["environment"]
    assert (environment["LOTSE_SMTP_HOST"], environment["LOTSE_SMTP_PORT"]) == ("mailpit", "1025")
    assert "mailpit" in compose["services"]["notifications"]["depends_on"]


# --- broker security ----------------------------------------------------------------------------


@pytest.fixture
def credentials() -> dict[str, dict[str, str]]:
    """Env file path as the compose file names it -> its values."""
    return {
        str(path.relative_to(ROOT)): read_env_file(path) for path in sorted((COMPOSE_DIR / "dev-credentials").glob("*"))
    }


def test_the_broker_refuses_unauthenticated_clients(compose: dict[str, Any]) -> None:
    problems = compose_broker_problems(compose)
    assert not problems, "\n".join(problems)


def _kafka(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]["kafka"]["environment"]


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(
            lambda c: _kafka(c).__setitem__(
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                _kafka(c)["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].replace("CLIENT:SASL_PLAINTEXT", "CLIENT:PLAINTEXT"),
            ),
            id="client-listener-plaintext",
        ),
        pytest.param(
            lambda c: _kafka(c).__setitem__(
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                _kafka(c)["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].replace("HOST:SASL_PLAINTEXT", "HOST:PLAINTEXT"),
            ),
            id="published-host-listener-plaintext",
        ),
        pytest.param(
            lambda c: _kafka(c).__setitem__(
                "KAFKA_LISTENERS", _kafka(c)["KAFKA_LISTENERS"].replace("INTERNAL://127.0.0.1:", "INTERNAL://:")
            ),
            id="internal-listener-on-every-address",
        ),
        pytest.param(
            lambda c: _kafka(c).__setitem__("KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND", "true"), id="allow-everyone"
        ),
        pytest.param(lambda c: _kafka(c).pop("KAFKA_AUTHORIZER_CLASS_NAME"), id="no-authorizer"),
        pytest.param(
            lambda c: _kafka(c).__setitem__("KAFKA_SASL_ENABLED_MECHANISMS", "SCRAM-SHA-512,PLAIN"), id="plain-too"
        ),
        pytest.param(
            lambda c: _kafka(c).__setitem__("KAFKA_SUPER_USERS", "User:lotse-admin;User:lotse-registry"),
            id="service-as-super-user",
        ),
        pytest.param(
            lambda c: _kafka(c).pop("KAFKA_LISTENER_NAME_HOST_SCRAM___SHA___512_SASL_JAAS_CONFIG"), id="no-jaas"
        ),
        pytest.param(lambda c: c["services"]["topics"].pop("network_mode"), id="loopback-from-outside"),
    ],
)
def test_a_broker_open_to_unauthenticated_or_unauthorised_clients_is_refused(
    compose: dict[str, Any], mutate: Any
) -> None:
    broken = copy.deepcopy(compose)
    mutate(broken)
    assert compose_broker_problems(broken)


def test_every_service_has_its_own_credentials_and_sasl_settings(
    compose: dict[str, Any], credentials: dict[str, dict[str, str]]
) -> None:
    problems = compose_service_problems(compose, credentials)
    assert not problems, "\n".join(problems)


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    return compose["services"][name]


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(
            lambda c, _: _service(c, "matching").__setitem__("env_file", _service(c, "registry")["env_file"]),
            id="shared-user",
        ),
        pytest.param(lambda c, _: _service(c, "notifications").pop("env_file"), id="no-credentials"),
        pytest.param(
            lambda c, _: _service(c, "registry")["environment"].__setitem__(
                "LOTSE_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"
            ),
            id="plaintext-service",
        ),
        pytest.param(
            lambda c, _: _service(c, "registry")["environment"].__setitem__("LOTSE_KAFKA_SASL_MECHANISM", "PLAIN"),
            id="plain-mechanism",
        ),
        pytest.param(
            lambda c, _: _service(c, "matching")["environment"].__setitem__("LOTSE_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
            id="bootstrap-not-sasl",
        ),
        pytest.param(
            lambda c, _: _service(c, "registry")["environment"].__setitem__("LOTSE_KAFKA_PASSWORD", "inline"),
            id="password-in-compose-file",
        ),
        pytest.param(
            lambda _, creds: creds["deploy/compose/dev-credentials/lotse-matching.env"].__setitem__(
                "LOTSE_KAFKA_PASSWORD",
                creds["deploy/compose/dev-credentials/lotse-registry.env"]["LOTSE_KAFKA_PASSWORD"],
            ),
            id="shared-password",
        ),
    ],
)
def test_a_service_without_its_own_sasl_credentials_is_refused(
    compose: dict[str, Any], credentials: dict[str, dict[str, str]], mutate: Any
) -> None:
    broken, broken_credentials = copy.deepcopy(compose), copy.deepcopy(credentials)
    mutate(broken, broken_credentials)
    assert compose_service_problems(broken, broken_credentials)


def test_each_principal_has_one_development_only_credentials_file(credentials: dict[str, dict[str, str]]) -> None:
    assert COMPOSE_TENANTS, "the compose broker has partner tenants"
    problems = credential_file_problems(credentials, compose_principals(COMPOSE_TENANTS))
    assert not problems, "\n".join(problems)
    for path in credentials:
        assert (ROOT / path).read_text().startswith("# DEVELOPMENT ONLY"), path


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda creds: creds.popitem(), id="principal-without-file"),
        pytest.param(
            lambda creds: creds["deploy/compose/dev-credentials/lotse-admin.env"].__setitem__(
                "LOTSE_KAFKA_PASSWORD", "pass word, with [brackets]"
            ),
            id="password-the-script-cannot-embed",
        ),
        pytest.param(
            lambda creds: creds["deploy/compose/dev-credentials/lotse-registry.env"].__setitem__(
                "LOTSE_KAFKA_USERNAME", "lotse-matching"
            ),
            id="file-of-another-user",
        ),
    ],
)
def test_broken_credentials_files_are_refused(credentials: dict[str, dict[str, str]], mutate: Any) -> None:
    broken = copy.deepcopy(credentials)
    mutate(broken)
    assert credential_file_problems(broken, compose_principals(COMPOSE_TENANTS))


def test_the_acls_give_each_partner_only_its_inbound_topic_and_each_service_only_its_own() -> None:
    grants = parse_kafka_acls(ACLS)
    problems = acl_problems(grants, COMPOSE_TENANTS)
    assert not problems, "\n".join(problems)
    for tenant in COMPOSE_TENANTS:
        assert grants[f"lotse-partner-{tenant}"] == {
            ("topic", f"lotse.partner.{tenant}.inbound.v1", "literal"): {"Write", "Describe"}
        }


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param(
            "--allow-principal User:lotse-partner-lindenau --operation Write "
            "--topic lotse.partner.musterstadt.inbound.v1",
            "unexpected ['Write']",
            id="partner-writes-another-tenant",
        ),
        pytest.param(
            "--allow-principal User:lotse-partner-musterstadt --operation Read --topic lotse.registry.volunteers.v1",
            "unexpected ['Read']",
            id="partner-reads-platform-events",
        ),
        pytest.param(
            "--allow-principal User:lotse-partner-musterstadt --operation Read "
            "--topic lotse.partner.musterstadt.inbound.v1.dlq",
            "unexpected ['Read']",
            id="partner-reads-its-dead-letters",
        ),
        pytest.param(
            "--allow-principal User:lotse-notifications --operation Write --topic lotse.registry.needs.v1",
            "unexpected ['Write']",
            id="service-writes-a-foreign-topic",
        ),
        pytest.param(
            "--allow-principal User:lotse-registry --operation Read --resource-pattern-type PREFIXED --topic lotse.",
            "unexpected ['Read']",
            id="service-reads-by-prefix",
        ),
        pytest.param(
            "--allow-principal User:lotse-matching --operation Read --group notifications",
            "unexpected ['Read']",
            id="service-joins-another-group",
        ),
        pytest.param(
            "--allow-principal User:mallory --operation Write --topic lotse.registry.needs.v1",
            "should have none",
            id="unknown-principal",
        ),
    ],
)
def test_a_wider_grant_is_refused(line: str, reason: str) -> None:
    problems = acl_problems(parse_kafka_acls(ACLS + line + "\n"), COMPOSE_TENANTS)
    assert any(reason in problem for problem in problems), problems


def test_a_missing_grant_is_refused() -> None:
    without_groups = "\n".join(line for line in ACLS.splitlines() if "--group registry." not in line)
    problems = acl_problems(parse_kafka_acls(without_groups), COMPOSE_TENANTS)
    assert any("lotse-registry: missing" in problem and "group" in problem for problem in problems), problems


@pytest.mark.parametrize(
    "line",
    [
        "--deny-principal User:lotse-registry --operation Read --topic lotse.registry.needs.v1",
        "--allow-principal User:lotse-registry --operation Alter --cluster",
        "--allow-principal User:lotse-registry --operation Read",
    ],
)
def test_an_acl_line_the_checks_do_not_understand_is_refused(line: str) -> None:
    with pytest.raises(ValueError):
        parse_kafka_acls(line)


# --- the kafka-setup script, with stand-ins for the Kafka tools ---------------------------------

STUB = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >>"$STUB_LOG"
previous=""
for argument in "$@"; do
  if [[ $previous == --command-config ]]; then cat "$argument" >>"$STUB_LOG"; fi
  previous=$argument
done
"""


def _run_setup(tmp_path: Path, setup_dir: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("kafka-configs.sh", "kafka-acls.sh"):
        (tools / name).write_text(STUB)
        (tools / name).chmod(stat.S_IRWXU)
    log = tmp_path / "calls.log"
    log.touch()
    result = subprocess.run(
        ["bash", str(setup_dir / "kafka-setup.sh")],
        env={"PATH": os.environ["PATH"], "KAFKA_BIN": str(tools), "STUB_LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result, log.read_text().splitlines()


@pytest.fixture
def setup_dir(tmp_path: Path) -> Path:
    target = tmp_path / "compose"
    shutil.copytree(COMPOSE_DIR, target)
    return target


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_the_setup_script_creates_every_credential_and_every_acl(
    tmp_path: Path, setup_dir: Path, credentials: dict[str, dict[str, str]]
) -> None:
    result, calls = _run_setup(tmp_path, setup_dir)
    assert result.returncode == 0, result.stderr
    internal = "--bootstrap-server 127.0.0.1:19092"
    created = {
        call.split("--entity-name ")[1].split()[0]: call.split("SCRAM-SHA-512=[password=")[1].rstrip("]")
        for call in calls
        if call.startswith(f"kafka-configs.sh {internal} --alter --entity-type users")
    }
    assert created == {
        values["LOTSE_KAFKA_USERNAME"]: values["LOTSE_KAFKA_PASSWORD"] for values in credentials.values()
    }
    applied = [call.removeprefix(f"kafka-acls.sh {internal} --add ") for call in calls if " --add " in call]
    assert applied == [line for line in ACLS.splitlines() if line and not line.startswith("#")]
    admin = credentials["deploy/compose/dev-credentials/lotse-admin.env"]["LOTSE_KAFKA_PASSWORD"]
    # Last: a login as the admin over SASL/SCRAM on the host listener, with its properties file.
    login, *properties = calls[-4:]
    assert login.startswith("kafka-acls.sh --bootstrap-server localhost:29092 --command-config ")
    assert login.endswith(" --list")
    assert properties == [
        "security.protocol=SASL_PLAINTEXT",
        "sasl.mechanism=SCRAM-SHA-512",
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="lotse-admin" password="{admin}";',
    ]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_the_setup_script_stops_at_a_credentials_file_without_password(tmp_path: Path, setup_dir: Path) -> None:
    (setup_dir / "dev-credentials" / "lotse-matching.env").write_text("LOTSE_KAFKA_USERNAME=lotse-matching\n")
    result, calls = _run_setup(tmp_path, setup_dir)
    assert result.returncode != 0
    assert "lotse-matching.env lacks LOTSE_KAFKA_USERNAME or LOTSE_KAFKA_PASSWORD" in result.stderr
    assert not [call for call in calls if "kafka-acls.sh" in call]
