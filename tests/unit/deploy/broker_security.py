"""Offline checks of the broker's security in docker compose and Kubernetes: who may connect how,
and who may do what. The expected ACLs are derived here from the contract catalogue and the
consumer-group table, independently of the generator, so that a generator bug or a hand edit
shows up as a problem. Each check returns a list of problems, empty when all is well."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lotse_cli.deploy_commands import CONSUMER_GROUPS
from lotse_contracts import PARTNER_INBOUND, TOPICS, Service, dead_letter_topic, partner_inbound_topic
from lotse_runtime.secrets import is_published

# principal -> (resource type, resource name, pattern type) -> operations
Grants = dict[str, dict[tuple[str, str, str], set[str]]]

COMPOSE_SERVICES = ("registry", "matching", "notifications")
COMPOSE_ADMIN = "lotse-admin"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]"}
SASL_PROTOCOLS = {"SASL_PLAINTEXT", "SASL_SSL"}
SCRAM = "SCRAM-SHA-512"


# --- who may do what ----------------------------------------------------------------------------


def expected_grants(tenants: Iterable[str]) -> Grants:
    """Least privilege: a service reads what it consumes with its own consumer groups and writes
    what it produces plus the dead letters of what it consumes; a partner writes its own inbound
    topic and nothing else."""
    tenants = sorted(tenants)
    topics = [*TOPICS, *(PARTNER_INBOUND.for_tenant(tenant) for tenant in tenants)]
    grants: Grants = {}
    for service in (Service.REGISTRY, Service.MATCHING, Service.NOTIFICATIONS):
        own = grants.setdefault(f"lotse-{service.value}", {})
        groups = CONSUMER_GROUPS[service]
        for topic in topics:
            if service in topic.consumers:
                own.setdefault(("topic", topic.name, "literal"), set()).update({"Describe", "Read"})
                own.setdefault(("topic", dead_letter_topic(topic.name), "literal"), set()).update({"Describe", "Write"})
                template = PARTNER_INBOUND.name if topic.name.startswith("lotse.partner.") else topic.name
                group = groups.get(template, groups.get("*"))
                assert group, f"no consumer group of {service.value} for {topic.name}"
                own[("group", group, "literal")] = {"Describe", "Read"}
            if service in topic.producers:
                own.setdefault(("topic", topic.name, "literal"), set()).update({"Describe", "Write"})
    for tenant in tenants:
        grants[f"lotse-partner-{tenant}"] = {("topic", partner_inbound_topic(tenant), "literal"): {"Describe", "Write"}}
    return grants


def acl_problems(grants: Grants, tenants: Iterable[str]) -> list[str]:
    """Every grant that is missing, wider or narrower than least privilege, or for an unknown principal."""
    expected = expected_grants(tenants)
    problems = []
    for principal in sorted(set(expected) | set(grants)):
        have, want = grants.get(principal, {}), expected.get(principal)
        if want is None:
            problems.append(f"{principal}: a principal with ACLs that should have none")
            continue
        for resource in sorted(set(have) | set(want)):
            granted, needed = have.get(resource, set()), want.get(resource, set())
            extra, missing = granted - needed, needed - granted
            if extra:
                problems.append(f"{principal}: unexpected {sorted(extra)} on {resource}")
            if missing:
                problems.append(f"{principal}: missing {sorted(missing)} on {resource}")
    return problems


_PATTERN_TYPES = {"LITERAL": "literal", "PREFIXED": "prefix"}


def parse_kafka_acls(text: str) -> Grants:
    """The grants of a file of `kafka-acls.sh --add` argument lines (deploy/compose/generated).
    Only allow rules on topics and groups are understood; anything else raises ValueError."""
    grants: Grants = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        words = shlex.split(line)
        principal, pattern, operations, resources = None, "literal", set(), []
        while words:
            option = words.pop(0)
            if not words:
                raise ValueError(f"line {number}: {option} without a value")
            value = words.pop(0)
            if option == "--allow-principal" and principal is None and value.startswith("User:"):
                principal = value.removeprefix("User:")
            elif option == "--operation":
                operations.add(value)
            elif option == "--resource-pattern-type" and value.upper() in _PATTERN_TYPES:
                pattern = _PATTERN_TYPES[value.upper()]
            elif option in ("--topic", "--group"):
                resources.append((option.removeprefix("--"), value))
            else:
                raise ValueError(f"line {number}: unexpected {option} {value}")
        if principal is None or not operations or not resources:
            raise ValueError(f"line {number}: needs --allow-principal, --operation and a resource")
        own = grants.setdefault(principal, {})
        for resource_type, name in resources:
            own.setdefault((resource_type, name, pattern), set()).update(operations)
    return grants


def kafka_user_grants(documents: Iterable[Mapping[str, Any]]) -> Grants:
    """The grants of Strimzi KafkaUsers."""
    grants: Grants = {}
    for doc in documents:
        if doc.get("kind") != "KafkaUser":
            continue
        own = grants.setdefault(doc["metadata"]["name"], {})
        for acl in doc["spec"]["authorization"]["acls"]:
            resource = acl["resource"]
            if acl.get("type", "allow") != "allow" or acl.get("host", "*") != "*":
                raise ValueError(f"{doc['metadata']['name']}: only allow rules from any host are expected")
            key = (resource["type"], resource["name"], resource.get("patternType", "literal"))
            own.setdefault(key, set()).update(acl["operations"])
    return grants


# --- docker compose: who may connect how --------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _listeners(value: str) -> dict[str, tuple[str, str]]:
    """NAME -> (host, port) of a Kafka listener list."""
    result = {}
    for item in value.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        result[name] = (host, port)
    return result


def _env_files(service: Mapping[str, Any]) -> list[str]:
    env_file = service.get("env_file", [])
    entries = [env_file] if isinstance(env_file, str | dict) else env_file
    return [entry if isinstance(entry, str) else entry["path"] for entry in entries]


def compose_broker_problems(compose: Mapping[str, Any]) -> list[str]:
    """The broker refuses unauthenticated clients: every listener reachable from outside the broker's
    own network namespace is SASL with SCRAM-SHA-512 only, nothing is allowed without an ACL, and
    the super users are the admin and the loopback listeners' ANONYMOUS principal."""
    services = compose["services"]
    env = services["kafka"]["environment"]
    problems = []
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = _listeners(env["KAFKA_LISTENERS"])
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    for name, (host, _) in listeners.items():
        protocol = protocols.get(name)
        if protocol in SASL_PROTOCOLS:
            jaas = env.get(f"KAFKA_LISTENER_NAME_{name}_SCRAM___SHA___512_SASL_JAAS_CONFIG", "")
            if "ScramLoginModule" not in jaas:
                problems.append(f"listener {name}: no SCRAM login module")
        elif host not in LOOPBACK_HOSTS:
            problems.append(
                f"listener {name} ({protocol}) accepts unauthenticated clients on {host or 'every address'}"
            )
        if "SASL_" in name or "SSL" in name:
            problems.append(f"listener {name}: the image demands a JAAS file for names with SASL_ or SSL")
    for name, (host, _) in advertised.items():
        if protocols.get(name) not in SASL_PROTOCOLS and host not in LOOPBACK_HOSTS:
            problems.append(f"advertised listener {name} at {host} is not SASL")
    published = {str(port).split(":")[-1] for port in services["kafka"].get("ports", [])}
    for name, (_, port) in listeners.items():
        if port in published and protocols.get(name) not in SASL_PROTOCOLS:
            problems.append(f"listener {name} is published on port {port} without SASL")
    if env.get("KAFKA_SASL_ENABLED_MECHANISMS") != SCRAM:
        problems.append(f"SASL mechanisms are {env.get('KAFKA_SASL_ENABLED_MECHANISMS')!r}, not {SCRAM} only")
    if env.get("KAFKA_AUTHORIZER_CLASS_NAME") != "org.apache.kafka.metadata.authorizer.StandardAuthorizer":
        problems.append("the broker does not use KRaft's StandardAuthorizer")
    if str(env.get("KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND")).lower() != "false":
        problems.append("allow.everyone.if.no.acl.found is not false")
    super_users = set(str(env.get("KAFKA_SUPER_USERS", "")).split(";"))
    if not super_users <= {f"User:{COMPOSE_ADMIN}", "User:ANONYMOUS"} or f"User:{COMPOSE_ADMIN}" not in super_users:
        problems.append(f"super users are {sorted(super_users)}")
    internal = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
    for name, service in services.items():
        # Only a job inside the broker's network namespace can reach a loopback listener.
        command = " ".join(map(str, service.get("command", [])))
        uses_loopback = any(f"{host}:{port}" in command for host, port in listeners.values() if host in LOOPBACK_HOSTS)
        if uses_loopback and service.get("network_mode") != "service:kafka":
            problems.append(f"{name} uses a loopback listener of the broker from outside its network namespace")
    if protocols.get(internal) in SASL_PROTOCOLS or listeners[internal][0] not in LOOPBACK_HOSTS:
        problems.append(f"inter-broker listener {internal} is expected on loopback")
    return problems


def compose_service_problems(compose: Mapping[str, Any], credentials: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Every service authenticates with SASL/SCRAM as its own user, on a SASL listener, with a
    password of its own. ``credentials``: env file path (as written in the compose file) -> values."""
    env = compose["services"]["kafka"]["environment"]
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    advertised = {
        f"{host}:{port}": name for name, (host, port) in _listeners(env["KAFKA_ADVERTISED_LISTENERS"]).items()
    }
    problems: list[str] = []
    passwords: dict[str, str] = {}
    for name in COMPOSE_SERVICES:
        service = compose["services"][name]
        environment = service["environment"]
        settings: dict[str, str] = {}
        for path in _env_files(service):
            settings.update(credentials.get(path, {}))
        settings.update({key: str(value) for key, value in environment.items()})  # environment wins
        if settings.get("LOTSE_KAFKA_SECURITY_PROTOCOL") not in SASL_PROTOCOLS:
            problems.append(f"{name}: Kafka security protocol {settings.get('LOTSE_KAFKA_SECURITY_PROTOCOL')}")
        if settings.get("LOTSE_KAFKA_SASL_MECHANISM") != SCRAM:
            problems.append(f"{name}: SASL mechanism {settings.get('LOTSE_KAFKA_SASL_MECHANISM')}")
        listener = advertised.get(settings.get("LOTSE_KAFKA_BOOTSTRAP", ""))
        if protocols.get(listener) != settings.get("LOTSE_KAFKA_SECURITY_PROTOCOL"):
            problems.append(
                f"{name}: bootstrap {settings.get('LOTSE_KAFKA_BOOTSTRAP')} is not a listener of its protocol"
            )
        if "LOTSE_KAFKA_USERNAME" in environment or "LOTSE_KAFKA_PASSWORD" in environment:
            problems.append(f"{name}: Kafka credentials belong in its generated secrets file, not in the compose file")
        if settings.get("LOTSE_KAFKA_USERNAME") != f"lotse-{name}":
            problems.append(f"{name}: Kafka user {settings.get('LOTSE_KAFKA_USERNAME')!r} is not its own")
        password = settings.get("LOTSE_KAFKA_PASSWORD")
        if not password:
            problems.append(f"{name}: no Kafka password")
        elif password in passwords:
            problems.append(f"{name}: shares its Kafka password with {passwords[password]}")
        else:
            passwords[password] = name
    return problems


def credential_file_problems(credentials: Mapping[str, Mapping[str, str]], principals: Iterable[str]) -> list[str]:
    """One file per principal, named after it, with a distinct password that kafka-setup.sh can embed."""
    problems = []
    by_user = {values.get("LOTSE_KAFKA_USERNAME"): path for path, values in credentials.items()}
    for path, values in credentials.items():
        if Path(path).stem != values.get("LOTSE_KAFKA_USERNAME"):
            problems.append(f"{path}: user {values.get('LOTSE_KAFKA_USERNAME')!r} is not the file's name")
        if not re.fullmatch(r"[A-Za-z0-9-]{16,}", values.get("LOTSE_KAFKA_PASSWORD", "")):
            problems.append(f"{path}: password missing, short or with characters kafka-setup.sh cannot embed")
    if set(by_user) != set(principals):
        problems.append(f"principals with credentials {sorted(map(str, by_user))} != {sorted(principals)}")
    passwords = [values.get("LOTSE_KAFKA_PASSWORD") for values in credentials.values()]
    if len(set(passwords)) != len(passwords):
        problems.append("two principals share a password")
    return problems


# --- Kubernetes ---------------------------------------------------------------------------------


def kubernetes_kafka_problems(documents: Iterable[Mapping[str, Any]], *, tls: bool) -> list[str]:
    """Each service connects as its own KafkaUser with SCRAM-SHA-512 (and, with ``tls``, only over
    TLS to the 9093 listener with the cluster CA): its pods, its KEDA scaler and its egress."""
    docs = list(documents)

    def named(kind: str) -> dict[str, Mapping[str, Any]]:
        return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}

    configmaps, users = named("ConfigMap"), named("KafkaUser")
    platform = configmaps["lotse-platform"]["data"]
    problems = []
    protocol = "SASL_SSL" if tls else "SASL_PLAINTEXT"
    port = "9093" if tls else "9092"
    if platform.get("LOTSE_KAFKA_SECURITY_PROTOCOL") != protocol:
        problems.append(f"services connect with {platform.get('LOTSE_KAFKA_SECURITY_PROTOCOL')}, not {protocol}")
    if platform.get("LOTSE_KAFKA_SASL_MECHANISM") != SCRAM:
        problems.append(f"SASL mechanism {platform.get('LOTSE_KAFKA_SASL_MECHANISM')}")
    if any(not server.endswith(f":{port}") for server in platform.get("LOTSE_KAFKA_BOOTSTRAP", "").split(",")):
        problems.append(f"bootstrap {platform.get('LOTSE_KAFKA_BOOTSTRAP')} is not the listener on {port}")
    scaler = configmaps["lotse-kafka-scaler"]["data"]
    if scaler != {"sasl": "scram_sha512", "tls": "enable" if tls else "disable"}:
        problems.append(f"KEDA's scaler connects with {scaler}")
    for user in users.values():
        if (
            user["spec"]["authentication"]["type"] != "scram-sha-512"
            or user["spec"]["authorization"]["type"] != "simple"
        ):
            problems.append(f"KafkaUser {user['metadata']['name']}: not SCRAM-SHA-512 with simple authorization")
    seen_users = set()
    for name in COMPOSE_SERVICES:
        user = configmaps[f"lotse-{name}-config"]["data"].get("LOTSE_KAFKA_USERNAME")
        if user != f"lotse-{name}" or user not in users or user in seen_users:
            problems.append(f"{name}: Kafka user {user!r} is not its own KafkaUser")
        seen_users.add(user)
        (container,) = named("Deployment")[f"lotse-{name}"]["spec"]["template"]["spec"]["containers"]
        passwords = [var for var in container.get("env", []) if var["name"] == "LOTSE_KAFKA_PASSWORD"]
        reference = passwords[0]["valueFrom"]["secretKeyRef"] if passwords else {}
        if (reference.get("name"), reference.get("key"), reference.get("optional", False)) != (user, "password", False):
            problems.append(f"{name}: password not required from the Secret of KafkaUser {user}")
        auth = named("TriggerAuthentication")[f"lotse-{name}-kafka"]["spec"]
        from_configmaps = {(ref["parameter"], ref["name"], ref["key"]) for ref in auth.get("configMapTargetRef", [])}
        from_secrets = {(ref["parameter"], ref["name"], ref["key"]) for ref in auth.get("secretTargetRef", [])}
        logs_in_as_itself = ("username", f"lotse-{name}-config", "LOTSE_KAFKA_USERNAME") in from_configmaps and (
            ("password", user, "password") in from_secrets
        )
        if not logs_in_as_itself:
            problems.append(f"{name}: KEDA's scaler does not log in as {user}")
        if tls and ("ca", "lotse-cluster-ca-cert", "ca.crt") not in from_secrets:
            problems.append(f"{name}: KEDA's scaler does not check the broker against the cluster CA")
    if tls and not platform.get("SSL_CERT_FILE"):
        problems.append("no CA bundle (SSL_CERT_FILE) for the broker's certificate")
    egress = named("NetworkPolicy")["lotse-egress"]["spec"]["egress"]
    kafka_rules = [rule for rule in egress if "strimzi.io/kind" in str(rule.get("to", ""))]
    kafka_ports = {str(p["port"]) for rule in kafka_rules for p in rule.get("ports", [])}
    if kafka_ports != {port}:
        problems.append(f"Kafka egress on ports {sorted(kafka_ports)}, expected {port} only")
    return problems


# --- committed secrets and exposure -------------------------------------------------------------

# Settings whose value is a secret: they may be named in committed files, never given a value there.
SECRET_VARIABLE = re.compile(r"(PASSWORD|SECRET|_KEY)$")
# Services whose host ports must stay on this machine's loopback (infrastructure without TLS).
LOOPBACK_ONLY = ("kafka", "mongodb", "mailpit")


def committed_secret_problems(texts: Mapping[str, str]) -> list[str]:
    """Every word of a committed file (path -> text) that is a secret ever published in this repository."""
    return [
        f"{path}: holds a published secret value {word[:6]}..."
        for path, text in texts.items()
        for word in sorted({word.strip("-.") for word in re.findall(r"[A-Za-z0-9_.-]{8,}", text)})
        if is_published(word)
    ]


def compose_secret_problems(compose: Mapping[str, Any]) -> list[str]:
    """No secret setting has a value (or a default) in the compose file itself."""
    problems = []
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        items = environment.items() if isinstance(environment, Mapping) else (e.split("=", 1) for e in environment)
        for key, *_ in items:
            if SECRET_VARIABLE.search(key) and not key.startswith("KAFKA_"):
                problems.append(f"{name}: {key} is set in the compose file; it belongs in the generated secrets")
    return problems


def compose_exposure_problems(compose: Mapping[str, Any]) -> list[str]:
    """Kafka's host listener, MongoDB and Mailpit are published on 127.0.0.1 only, and MongoDB runs
    with authentication (root user from the secrets, a keyFile for the replica set)."""
    problems = []
    for name in LOOPBACK_ONLY:
        for port in compose["services"][name].get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                problems.append(f"{name}: port {port} is published on every interface")
    mongodb = compose["services"]["mongodb"]
    command = mongodb.get("command", [])
    if "--keyFile" not in command or "--noauth" in command:
        problems.append("mongodb: runs without a keyFile (no authentication)")
    if mongodb.get("env_file") != "deploy/compose/secrets/mongodb.env":
        problems.append("mongodb: its root user does not come from the generated secrets")
    if "MONGO_INITDB_ROOT_PASSWORD" not in " ".join(mongodb.get("healthcheck", {}).get("test", [])):
        problems.append("mongodb: the healthcheck does not log in")
    return problems
