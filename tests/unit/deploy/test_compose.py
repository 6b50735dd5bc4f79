"""docker-compose.yml against the Compose Specification schema, the wiring the services need, the
broker's security (SASL/SCRAM per service and per partner, least-privilege ACLs) and its secrets:
none committed, generated per machine by `lotse deploy compose-secrets`, MongoDB with authentication,
infrastructure ports on loopback only."""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import ipaddress
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from lotse_cli.deploy_commands import compose_principals, load_tenants, write_compose_secrets
from tests.unit.deploy.broker_security import (
    acl_problems,
    committed_secret_problems,
    compose_broker_problems,
    compose_exposure_problems,
    compose_secret_problems,
    compose_service_problems,
    credential_file_problems,
    parse_kafka_acls,
    read_env_file,
)
from tests.unit.deploy.validation import PORTAL, ROOT, SERVICES, compose_errors

COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE_TENANTS = load_tenants(COMPOSE_DIR / "tenants.yaml")
ACLS = (COMPOSE_DIR / "generated" / "kafka-acls.txt").read_text(encoding="utf-8")

REQUIRED_ENVIRONMENT = {
    "LOTSE_KAFKA_BOOTSTRAP",
    "LOTSE_KAFKA_SECURITY_PROTOCOL",
    "LOTSE_KAFKA_SASL_MECHANISM",
    "LOTSE_LOG_LEVEL",
    "LOTSE_JWT_ISSUER",
    "LOTSE_JWT_JWKS_URL",
    "LOTSE_JWT_AUDIENCE",
}
SERVICE_ENVIRONMENT = {
    "registry": set(),
    "matching": set(),
    "notifications": {"LOTSE_SMTP_HOST", "LOTSE_SMTP_PORT", "LOTSE_ANSWER_LINK_BASE_URL"},
}
# What comes only from the service's generated secrets file, never from the compose file.
REQUIRED_SECRETS = {"LOTSE_KAFKA_USERNAME", "LOTSE_KAFKA_PASSWORD", "LOTSE_MONGO_URL"}
SERVICE_SECRETS = {
    "registry": set(),
    "matching": {"LOTSE_ANSWER_LINK_SECRET"},
    "notifications": {"LOTSE_ANSWER_LINK_SECRET"},
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
    compose: dict[str, Any], credentials: dict[str, dict[str, str]], name: str, port: int
) -> None:
    service = compose["services"][name]
    assert service["build"] == {"context": ".", "dockerfile": f"deploy/docker/{name}.Dockerfile"}
    assert (ROOT / service["build"]["dockerfile"]).is_file()
    # Each service may be scaled (a host port each from a range; matching since issue 19).
    # One host port each by default; a range of its own for several replicas (deploy/compose/README.md).
    assert service["ports"] == [f"${{LOTSE_{name.upper()}_HOST_PORTS:-{port}}}:{port}"]
    environment = service["environment"]
    assert REQUIRED_ENVIRONMENT | SERVICE_ENVIRONMENT[name] <= set(environment)
    assert all(key.startswith("LOTSE_") for key in environment)
    assert environment["LOTSE_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert service["env_file"] == f"deploy/compose/secrets/lotse-{name}.env"
    secrets = credentials[service["env_file"]]
    assert REQUIRED_SECRETS | SERVICE_SECRETS[name] <= set(secrets)
    assert not (REQUIRED_SECRETS | SERVICE_SECRETS[name]) & set(environment)
    # Its own MongoDB user, on its own database.
    assert secrets["LOTSE_MONGO_URL"].startswith(f"mongodb://lotse-{name}:")
    assert secrets["LOTSE_MONGO_URL"].endswith(f"@mongodb:27017/{name}?replicaSet=rs0")
    depends = service["depends_on"]
    assert depends["kafka"] == {"condition": "service_healthy"}
    assert depends["mongodb"] == {"condition": "service_healthy"}
    assert depends["kafka-setup"] == {"condition": "service_completed_successfully"}
    assert depends["topics"] == {"condition": "service_completed_successfully"}
    assert f"127.0.0.1:{port}/ready" in " ".join(service["healthcheck"]["test"])
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert service["stop_signal"] == "SIGTERM"


def test_the_portal_is_wired_to_the_services_and_published_on_loopback_only(
    compose: dict[str, Any], setup_dir: Path
) -> None:
    ((name, port),) = PORTAL.items()
    service = compose["services"][name]
    assert service["build"] == {"context": ".", "dockerfile": f"deploy/docker/{name}.Dockerfile"}
    assert service["ports"] == [f"127.0.0.1:{port}:{port}"]
    environment = service["environment"]
    assert environment["LOTSE_PUBLIC_URL"] == f"http://localhost:{port}"
    for other, other_port in SERVICES.items():
        assert environment[f"LOTSE_{other.upper()}_URL"] == f"http://{other}:{other_port}"
        assert service["depends_on"][other] == {"condition": "service_healthy"}
    assert service["depends_on"]["mongodb"] == {"condition": "service_healthy"}
    # Browsers reach the issuer at localhost; the portal reads discovery inside the network.
    issuer = compose["services"]["registry"]["environment"].get("LOTSE_JWT_ISSUER") or environment["LOTSE_JWT_ISSUER"]
    assert issuer.startswith("http://localhost:")
    assert environment["LOTSE_OIDC_DISCOVERY_URL"].startswith("http://keycloak:8080/realms/lotse/")
    assert "keycloak" in service["depends_on"]
    assert (environment["LOTSE_OIDC_CLIENT_ID"], environment["LOTSE_DATABASE"]) == ("lotse-portal", "portal")
    # The same token issuer and audience as the services.
    for key in ("LOTSE_JWT_ISSUER", "LOTSE_JWT_AUDIENCE"):
        assert environment[key] == compose["services"]["registry"]["environment"][key]
    assert f"127.0.0.1:{port}/ready" in " ".join(service["healthcheck"]["test"])
    assert (service["read_only"], service["cap_drop"], service["stop_signal"]) == (True, ["ALL"], "SIGTERM")
    # Its secrets: its own MongoDB user and the OpenID client secret; no Kafka login, so no lotse-*.env.
    assert service["env_file"] == "deploy/compose/secrets/portal.env"
    secrets = read_env_file(setup_dir / "secrets" / "portal.env")
    assert set(secrets) == {"LOTSE_MONGO_URL", "LOTSE_OIDC_CLIENT_SECRET"}
    assert not set(secrets) & set(environment)
    mongo = read_env_file(setup_dir / "secrets" / "mongodb.env")
    assert secrets["LOTSE_MONGO_URL"] == (
        f"mongodb://lotse-portal:{mongo['LOTSE_MONGO_PORTAL_PASSWORD']}@mongodb:27017/portal?replicaSet=rs0"
    )
    assert len(secrets["LOTSE_OIDC_CLIENT_SECRET"]) >= 32
    # Keycloak's realm import gives client lotse-portal the same secret.
    keycloak = read_env_file(setup_dir / "secrets" / "keycloak.env")
    assert keycloak["LOTSE_OIDC_CLIENT_SECRET"] == secrets["LOTSE_OIDC_CLIENT_SECRET"]
    assert '"portal"' in (COMPOSE_DIR / "mongo-users.js").read_text()


# --- matching's replicas: each one's own address, and trust in its peers' forwarded addresses ------

ENTRYPOINT = COMPOSE_DIR / "matching-entrypoint.py"
# /proc/net/route of a container in a compose network 172.18.0.0/16 (gateway 172.18.0.1).
ROUTES = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010012AC\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
)
OWN = ipaddress.IPv4Address("172.18.0.5")
PEER, GATEWAY, CALLER = "172.18.0.6", "172.18.0.1", "203.0.113.9"


@pytest.fixture
def entrypoint() -> ModuleType:
    spec = importlib.util.spec_from_file_location("matching_entrypoint", ENTRYPOINT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_matching_starts_through_the_entry_point_that_gives_each_replica_its_address(compose: dict[str, Any]) -> None:
    matching = compose["services"]["matching"]
    dockerfile = (ROOT / "deploy" / "docker" / "matching.Dockerfile").read_text()
    (line,) = [line for line in dockerfile.splitlines() if line.startswith("ENTRYPOINT ")]
    # The script, then the image's own command.
    assert matching["entrypoint"] == ["python", "/lotse/matching-entrypoint.py", *json.loads(line.split(" ", 1)[1])]
    # That one file only: the compose folder holds the secrets too.
    assert matching["volumes"] == ["./deploy/compose/matching-entrypoint.py:/lotse/matching-entrypoint.py:ro"]
    assert ENTRYPOINT.is_file()
    assert "LOTSE_REPLICA_URL" not in matching["environment"]  # one value for every replica would be wrong
    for name in ("registry", "notifications"):
        assert "entrypoint" not in compose["services"][name]


def test_the_entry_point_names_the_containers_address_and_trusts_its_network_but_not_the_gateway(
    entrypoint: ModuleType,
) -> None:
    added = entrypoint.environment({"LOTSE_HTTP_PORT": "8002"}, ROUTES, OWN)
    assert added["LOTSE_REPLICA_URL"] == "http://172.18.0.5:8002"
    trusted = added["FORWARDED_ALLOW_IPS"]
    networks = [ipaddress.ip_network(part) for part in trusted.split(",")]
    assert sum(network.num_addresses for network in networks) == 2**16 - 1
    assert not any(ipaddress.ip_address(GATEWAY) in network for network in networks)

    async def client_seen(peer: str, forwarded_for: str) -> str:
        seen: dict[str, Any] = {}

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            seen.update(scope)

        middleware = ProxyHeadersMiddleware(app, trusted_hosts=trusted)  # type: ignore[arg-type]
        scope = {"type": "http", "client": (peer, 40000), "headers": [(b"x-forwarded-for", forwarded_for.encode())]}
        await middleware(scope, None, None)  # type: ignore[arg-type]
        return str(seen["client"][0])

    # Forwarded by another replica: the caller counts. Sent through the published port (the gateway)
    # or from outside, X-Forwarded-For is not believed.
    assert asyncio.run(client_seen(PEER, CALLER)) == CALLER
    assert asyncio.run(client_seen(GATEWAY, CALLER)) == GATEWAY
    assert asyncio.run(client_seen("198.51.100.4", CALLER)) == "198.51.100.4"


def test_the_entry_point_keeps_what_the_environment_sets_and_refuses_a_loopback_address(
    entrypoint: ModuleType,
) -> None:
    given = {"LOTSE_REPLICA_URL": "http://matching-1:8002", "FORWARDED_ALLOW_IPS": "172.18.0.0/16"}
    assert entrypoint.environment(given, ROUTES, OWN) == {}
    assert entrypoint.environment({}, ROUTES, OWN)["LOTSE_REPLICA_URL"] == "http://172.18.0.5:8002"
    with pytest.raises(SystemExit, match="not this container's address"):
        entrypoint.environment({}, ROUTES, ipaddress.IPv4Address("127.0.0.1"))
    with pytest.raises(SystemExit):  # an address outside every network of the container
        entrypoint.environment({}, ROUTES, ipaddress.IPv4Address("10.1.2.3"))
    # Without a default route (an internal network) the whole network is trusted.
    internal = "\n".join(ROUTES.splitlines()[::2])
    assert entrypoint.environment({}, internal, OWN)["FORWARDED_ALLOW_IPS"] == "172.18.0.0/16"


def test_the_entry_point_runs_the_command_with_the_address_set(
    entrypoint: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    routes = tmp_path / "route"
    routes.write_text(ROUTES)
    monkeypatch.setattr(entrypoint, "ROUTES", str(routes))
    monkeypatch.setattr(entrypoint, "own_address", lambda: OWN)
    for name in ("LOTSE_REPLICA_URL", "FORWARDED_ALLOW_IPS"):
        monkeypatch.setenv(name, "")  # so that monkeypatch removes what main adds
        monkeypatch.delenv(name)
    monkeypatch.setenv("LOTSE_HTTP_PORT", "8002")
    executed: list[list[str]] = []
    monkeypatch.setattr(entrypoint.os, "execvp", lambda file, argv: executed.append([file, *argv]))
    entrypoint.main(["python", "-m", "lotse_matching"])
    assert executed == [["python", "python", "-m", "lotse_matching"]]
    assert os.environ["LOTSE_REPLICA_URL"] == "http://172.18.0.5:8002"
    trusted = [ipaddress.ip_network(part) for part in os.environ["FORWARDED_ALLOW_IPS"].split(",")]
    assert any(ipaddress.ip_address(PEER) in network for network in trusted)
    assert not any(ipaddress.ip_address(GATEWAY) in network for network in trusted)


def test_the_entry_point_replaces_itself_with_its_command() -> None:
    environment = {
        "PATH": os.environ["PATH"],
        "LOTSE_REPLICA_URL": "http://172.18.0.5:8002",
        "FORWARDED_ALLOW_IPS": "172.18.0.0/16",
    }
    script = "import os; print(os.environ['LOTSE_REPLICA_URL'])"
    result = subprocess.run(
        [sys.executable, str(ENTRYPOINT), sys.executable, "-c", script],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "http://172.18.0.5:8002\n"), result.stderr


def test_notifications_sends_mail_to_mailpit(compose: dict[str, Any]) -> None:
    environment = compose["services"]["notifications"]["environment"]
    assert (environment["LOTSE_SMTP_HOST"], environment["LOTSE_SMTP_PORT"]) == ("mailpit", "1025")
    assert "mailpit" in compose["services"]["notifications"]["depends_on"]


# --- broker security ----------------------------------------------------------------------------


@pytest.fixture
def setup_dir(tmp_path: Path) -> Path:
    """A copy of deploy/compose with secrets generated as `lotse deploy compose-secrets` does."""
    target = tmp_path / "compose"
    shutil.copytree(COMPOSE_DIR, target, ignore=shutil.ignore_patterns("secrets"))
    write_compose_secrets(target)
    return target


@pytest.fixture
def credentials(setup_dir: Path) -> dict[str, dict[str, str]]:
    """The generated env file of each Kafka principal, by its path as the compose file names it -> its values."""
    return {
        f"deploy/compose/secrets/{path.name}": read_env_file(path)
        for path in sorted((setup_dir / "secrets").glob("lotse-*.env"))
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
            lambda _, creds: creds["deploy/compose/secrets/lotse-matching.env"].__setitem__(
                "LOTSE_KAFKA_PASSWORD",
                creds["deploy/compose/secrets/lotse-registry.env"]["LOTSE_KAFKA_PASSWORD"],
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


def test_each_principal_gets_one_generated_credentials_file(
    setup_dir: Path, credentials: dict[str, dict[str, str]]
) -> None:
    assert COMPOSE_TENANTS, "the compose broker has partner tenants"
    problems = credential_file_problems(credentials, compose_principals(COMPOSE_TENANTS))
    assert not problems, "\n".join(problems)
    for path in credentials:
        assert (setup_dir / "secrets" / Path(path).name).read_text().startswith("# Generated by"), path


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda creds: creds.popitem(), id="principal-without-file"),
        pytest.param(
            lambda creds: creds["deploy/compose/secrets/lotse-admin.env"].__setitem__(
                "LOTSE_KAFKA_PASSWORD", "pass word, with [brackets]"
            ),
            id="password-the-script-cannot-embed",
        ),
        pytest.param(
            lambda creds: creds["deploy/compose/secrets/lotse-registry.env"].__setitem__(
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
    admin = credentials["deploy/compose/secrets/lotse-admin.env"]["LOTSE_KAFKA_PASSWORD"]
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
    (setup_dir / "secrets" / "lotse-matching.env").write_text("LOTSE_KAFKA_USERNAME=lotse-matching\n")
    result, calls = _run_setup(tmp_path, setup_dir)
    assert result.returncode != 0
    assert "lotse-matching.env lacks LOTSE_KAFKA_USERNAME or LOTSE_KAFKA_PASSWORD" in result.stderr
    assert not [call for call in calls if "kafka-acls.sh" in call]


# --- secrets: none committed, generated per machine ---------------------------------------------


def _committed_deployment_files() -> dict[str, str]:
    """docker-compose.yml and every file under deploy/ that git would commit (not the ignored secrets)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "docker-compose.yml", "deploy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    files = {path: ROOT / path for path in listed if (ROOT / path).is_file()}
    return {path: file.read_text(encoding="utf-8", errors="replace") for path, file in files.items()}


def test_no_committed_compose_or_kubernetes_file_holds_a_published_secret() -> None:
    texts = _committed_deployment_files()
    assert "docker-compose.yml" in texts and "deploy/k8s/overlays/development/kustomization.yaml" in texts
    assert not any(path.startswith("deploy/compose/secrets/") for path in texts)
    problems = committed_secret_problems(texts)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "text",
    [
        "  LOTSE_JWT_HS256_KEY: ${LOTSE_JWT_HS256_KEY:-lotse-development-key-change-me-0123456789}\n",
        "LOTSE_KAFKA_PASSWORD=dev-03588b51d2a0c36f78b7acfb\n",
        "stringData:\n  LOTSE_ANSWER_LINK_SECRET: development-answer-secret-not-for-production\n",
    ],
)
def test_a_published_secret_in_a_deployment_file_is_found(text: str) -> None:
    assert committed_secret_problems({"docker-compose.yml": text})


def test_the_compose_file_gives_no_secret_a_value(compose: dict[str, Any]) -> None:
    problems = compose_secret_problems(compose)
    assert not problems, "\n".join(problems)
    broken = copy.deepcopy(compose)
    broken["services"]["matching"]["environment"]["LOTSE_ANSWER_LINK_SECRET"] = "${LOTSE_ANSWER_LINK_SECRET:-x}"
    assert compose_secret_problems(broken)


def test_infrastructure_listens_on_loopback_only_and_mongodb_authenticates(compose: dict[str, Any]) -> None:
    problems = compose_exposure_problems(compose)
    assert not problems, "\n".join(problems)
    mongodb = compose["services"]["mongodb"]
    volumes = mongodb["volumes"]
    assert "./deploy/compose/secrets/mongodb-keyfile:/run/lotse/mongodb-keyfile:ro" in volumes
    assert "./deploy/compose/mongo-users.js:/docker-entrypoint-initdb.d/mongo-users.js:ro" in volumes
    # The keyFile mongod reads is the copy only the mongodb user may read.
    assert "install -m 400 -o mongodb -g mongodb /run/lotse/mongodb-keyfile /data/configdb/keyfile" in (
        " ".join(mongodb["entrypoint"])
    )
    assert mongodb["command"][-2:] == ["--keyFile", "/data/configdb/keyfile"]


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda c: c["services"]["mongodb"].__setitem__("ports", ["27017:27017"]), id="mongodb-public"),
        pytest.param(lambda c: c["services"]["mailpit"]["ports"].append("8025:8025"), id="mailpit-public"),
        pytest.param(lambda c: c["services"]["kafka"].__setitem__("ports", ["29092:29092"]), id="kafka-public"),
        pytest.param(
            lambda c: c["services"]["mongodb"].__setitem__("command", ["mongod", "--replSet", "rs0"]), id="no-auth"
        ),
        pytest.param(lambda c: c["services"]["mongodb"].pop("env_file"), id="no-root-user"),
    ],
)
def test_exposed_or_unauthenticated_infrastructure_is_refused(compose: dict[str, Any], mutate: Any) -> None:
    broken = copy.deepcopy(compose)
    mutate(broken)
    assert compose_exposure_problems(broken)


def test_compose_secrets_are_private_consistent_and_kept(setup_dir: Path) -> None:
    folder = setup_dir / "secrets"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = {path.name: path for path in folder.iterdir()}
    expected = {"mongodb.env", "mongodb-keyfile", "portal.env", "keycloak.env"} | {
        f"{p}.env" for p in compose_principals(COMPOSE_TENANTS)
    }
    assert expected == set(files)
    for path in files.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    mongo = read_env_file(files["mongodb.env"])
    services = {name: read_env_file(files[f"lotse-{name}.env"]) for name in SERVICES}
    for name, values in services.items():
        # The URL carries the password the MongoDB initialisation gives that service's user.
        assert f"lotse-{name}:{mongo[f'LOTSE_MONGO_{name.upper()}_PASSWORD']}@" in values["LOTSE_MONGO_URL"]
        # No token key: tokens come from Keycloak.
        assert not {key for key in values if key.startswith("LOTSE_JWT_")}
    # One answer link secret for the service that signs and the one that verifies.
    assert services["matching"]["LOTSE_ANSWER_LINK_SECRET"] == services["notifications"]["LOTSE_ANSWER_LINK_SECRET"]
    assert "LOTSE_ANSWER_LINK_SECRET" not in services["registry"]
    keycloak = read_env_file(files["keycloak.env"])
    assert keycloak["KC_BOOTSTRAP_ADMIN_USERNAME"] == "lotse-admin"
    assert len(keycloak["LOTSE_OIDC_CLIENT_SECRET"]) >= 32
    secrets = [mongo["MONGO_INITDB_ROOT_PASSWORD"], keycloak["KC_BOOTSTRAP_ADMIN_PASSWORD"]]
    secrets += [keycloak["LOTSE_OIDC_CLIENT_SECRET"], services["matching"]["LOTSE_ANSWER_LINK_SECRET"]]
    secrets += [values["LOTSE_KAFKA_PASSWORD"] for values in services.values()]
    assert len(set(secrets)) == len(secrets)
    before = {name: path.read_text() for name, path in files.items()}
    # Again, with a new tenant: nothing that exists changes, the new partner gets a password.
    (setup_dir / "tenants.yaml").write_text("tenants:\n  - musterstadt\n  - lindenau\n  - neustadt\n")
    assert [path.name for path in write_compose_secrets(setup_dir)] == ["lotse-partner-neustadt.env"]
    assert all((folder / name).read_text() == text for name, text in before.items())
    assert write_compose_secrets(setup_dir) == []
    # Rotating one service's Kafka password renews that alone: the shared secrets stay as they are.
    (folder / "lotse-matching.env").unlink()
    write_compose_secrets(setup_dir)
    renewed = read_env_file(folder / "lotse-matching.env")
    assert renewed["LOTSE_KAFKA_PASSWORD"] != services["matching"]["LOTSE_KAFKA_PASSWORD"]
    for key in ("LOTSE_MONGO_URL", "LOTSE_ANSWER_LINK_SECRET"):
        assert renewed[key] == services["matching"][key]


def test_compose_refuses_to_start_without_the_generated_secrets(compose: dict[str, Any]) -> None:
    """The compose file points at the ignored folder `lotse deploy compose-secrets` writes, so a
    forgotten step stops `docker compose up` ("env file not found") instead of running without."""
    for name in (*SERVICES, *PORTAL, "mongodb"):
        env_file = compose["services"][name]["env_file"]
        assert env_file.startswith("deploy/compose/secrets/"), name
    ignored = subprocess.run(
        ["git", "check-ignore", "deploy/compose/secrets/lotse-registry.env", ".env"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    ).stdout.split()
    assert ignored == ["deploy/compose/secrets/lotse-registry.env", ".env"]
