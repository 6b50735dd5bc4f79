"""The Kubernetes manifests: base and both overlays, rendered, against the Kubernetes and CRD schemas,
plus the rules the design asks for (probes, graceful shutdown, hardening, network policies, TLS)."""

from __future__ import annotations

import copy
import ipaddress
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lotse_cli.deploy_commands import load_tenants
from lotse_contracts.topics import MATCHING_WORK
from tests.unit.deploy.broker_security import (
    SECRET_VARIABLE,
    acl_problems,
    kafka_user_grants,
    kubernetes_kafka_problems,
)
from tests.unit.deploy.kustomize import Document, KustomizeError, apply_operation, render
from tests.unit.deploy.validation import K8S, PORTAL, RENDERED, SERVICES, WORKLOADS, kubernetes_errors

METRICS_PORT = 9464
PROMETHEUS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
INGRESS_CONTROLLER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Document]]:
    return {name: render(path) for name, path in RENDERED.items()}


def _by_kind(documents: list[Document], kind: str) -> dict[str, Document]:
    return {doc["metadata"]["name"]: doc for doc in documents if doc["kind"] == kind}


@pytest.mark.parametrize("variant", list(RENDERED))
def test_every_rendered_manifest_satisfies_its_schema(rendered: dict[str, list[Document]], variant: str) -> None:
    problems = [problem for doc in rendered[variant] for problem in kubernetes_errors(doc)]
    assert not problems, "\n".join(problems)


def test_every_yaml_file_under_deploy_k8s_is_rendered_or_a_kustomization(rendered: dict[str, list[Document]]) -> None:
    """A manifest that no kustomization includes would escape validation."""
    included = set()
    for directory in (K8S / "base", K8S / "overlays/development", K8S / "overlays/production"):
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        included |= {(directory / r).resolve() for r in kustomization["resources"] if not (directory / r).is_dir()}
    files = {path.resolve() for path in K8S.rglob("*.yaml")} - {(K8S / "tenants.yaml").resolve()}
    assert files - included == {path.resolve() for path in K8S.rglob("kustomization.yaml")}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) not installed")
@pytest.mark.parametrize("variant", list(RENDERED))
def test_the_small_renderer_agrees_with_kubectl_kustomize(rendered: dict[str, list[Document]], variant: str) -> None:
    output = subprocess.run(
        ["kubectl", "kustomize", str(RENDERED[variant])], capture_output=True, text=True, check=True, timeout=60
    ).stdout

    def key(doc: Document) -> tuple[str, str]:
        return doc["kind"], doc["metadata"]["name"]

    theirs = sorted((doc for doc in yaml.safe_load_all(output) if doc), key=key)
    assert sorted(rendered[variant], key=key) == theirs


# --- a broken manifest is refused ---------------------------------------------------------------


def _first(documents: list[Document], kind: str) -> Document:
    return copy.deepcopy(next(doc for doc in documents if doc["kind"] == kind))


def test_a_wrong_type_in_a_deployment_is_refused(rendered: dict[str, list[Document]]) -> None:
    deployment = _first(rendered["production"], "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eight thousand"
    assert any("containerPort" in problem for problem in kubernetes_errors(deployment))


def test_an_unknown_field_in_a_deployment_is_refused(rendered: dict[str, list[Document]]) -> None:
    deployment = _first(rendered["base"], "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/ready"}}
    assert kubernetes_errors(deployment)


def test_an_unknown_kind_is_refused() -> None:
    assert kubernetes_errors({"apiVersion": "apps/v1", "kind": "Deploymnet", "metadata": {"name": "x"}})
    assert kubernetes_errors({"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaTopc", "metadata": {"name": "x"}})


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("KafkaTopic", ("spec", "partitions"), "three"),
        ("KafkaUser", ("spec", "authentication", "type"), "scram-sha-1"),
        ("KafkaUser", ("spec", "authorization", "acls", 0, "operations"), ["Steal"]),
        ("ScaledObject", ("spec", "triggers"), "kafka"),
        ("ScaledObject", ("spec", "scaleTargetRef", "nmae"), "typo"),
        ("TriggerAuthentication", ("spec", "secretTargetRef"), [{"parameter": "password"}]),
    ],
)
def test_a_broken_custom_resource_is_refused(
    rendered: dict[str, list[Document]], kind: str, path: tuple[str | int, ...], value: object
) -> None:
    doc = _first(rendered["production"], kind)
    assert not kubernetes_errors(doc)
    node: Any = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    assert kubernetes_errors(doc)


def test_an_overlay_using_an_unsupported_kustomize_feature_fails_loudly(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\npatchesStrategicMerge: [x.yaml]\n")
    with pytest.raises(KustomizeError):
        render(tmp_path)


def test_a_patch_that_matches_nothing_fails(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "resources: []\npatches:\n  - target: {kind: Deployment, name: nope}\n    patch: '[]'\n"
    )
    with pytest.raises(KustomizeError):
        render(tmp_path)


# --- what the manifests must say ----------------------------------------------------------------


@pytest.mark.parametrize("variant", list(RENDERED))
def test_each_service_has_a_hardened_deployment_with_probes_and_graceful_shutdown(
    rendered: dict[str, list[Document]], variant: str
) -> None:
    deployments = _by_kind(rendered[variant], "Deployment")
    assert set(deployments) == {f"lotse-{name}" for name in WORKLOADS}
    for name, port in WORKLOADS.items():
        pod = deployments[f"lotse-{name}"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["ports"] == [
            {"name": "http", "containerPort": port, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ]
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
        assert int(container["lifecycle"]["preStop"]["exec"]["command"][1]) < pod["terminationGracePeriodSeconds"]
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert "memory" in container["resources"]["limits"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        assert ":latest" not in container["image"]
        assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("variant", list(RENDERED))
def test_services_pdbs_and_ingress_policies_select_the_deployments(
    rendered: dict[str, list[Document]], variant: str
) -> None:
    docs = rendered[variant]
    services, pdbs = _by_kind(docs, "Service"), _by_kind(docs, "PodDisruptionBudget")
    policies = _by_kind(docs, "NetworkPolicy")
    for name, port in SERVICES.items():
        pod_labels = _by_kind(docs, "Deployment")[f"lotse-{name}"]["spec"]["template"]["metadata"]["labels"]
        for selector in (
            services[f"lotse-{name}"]["spec"]["selector"],
            pdbs[f"lotse-{name}"]["spec"]["selector"]["matchLabels"],
            policies[f"lotse-{name}-ingress"]["spec"]["podSelector"]["matchLabels"],
        ):
            assert selector.items() <= pod_labels.items()
        assert services[f"lotse-{name}"]["spec"]["ports"][0]["port"] == port
        assert policies[f"lotse-{name}-ingress"]["spec"]["ingress"] == [
            {"ports": [{"port": port, "protocol": "TCP"}]},
            {"from": [PROMETHEUS], "ports": [{"port": METRICS_PORT, "protocol": "TCP"}]},
        ]
        # The metrics port is the pods' own: no Service (and so no Ingress) exposes it.
        assert [p["port"] for p in services[f"lotse-{name}"]["spec"]["ports"]] == [port]
    ((name, port),) = PORTAL.items()
    pod_labels = _by_kind(docs, "Deployment")[f"lotse-{name}"]["spec"]["template"]["metadata"]["labels"]
    for selector in (
        services[f"lotse-{name}"]["spec"]["selector"],
        pdbs[f"lotse-{name}"]["spec"]["selector"]["matchLabels"],
        policies[f"lotse-{name}-ingress"]["spec"]["podSelector"]["matchLabels"],
        policies[f"lotse-{name}-egress"]["spec"]["podSelector"]["matchLabels"],
    ):
        assert selector.items() <= pod_labels.items()
    assert [p["port"] for p in services[f"lotse-{name}"]["spec"]["ports"]] == [port]
    # The portal's pages from the ingress controller only, its metrics from Prometheus only.
    assert policies[f"lotse-{name}-ingress"]["spec"]["ingress"] == [
        {"from": [INGRESS_CONTROLLER], "ports": [{"port": port, "protocol": "TCP"}]},
        {"from": [PROMETHEUS], "ports": [{"port": METRICS_PORT, "protocol": "TCP"}]},
    ]


@pytest.mark.parametrize("variant", list(RENDERED))
def test_prometheus_scrapes_the_metrics_port_the_services_are_told(
    rendered: dict[str, list[Document]], variant: str
) -> None:
    platform = _by_kind(rendered[variant], "ConfigMap")["lotse-platform"]["data"]
    assert platform["LOTSE_METRICS_PORT"] == str(METRICS_PORT)
    assert platform["LOTSE_METRICS_HOST"] == "0.0.0.0"  # a pod's port is reached on its pod IP
    for deployment in _by_kind(rendered[variant], "Deployment").values():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(METRICS_PORT),
            "prometheus.io/path": "/metrics",
        }


@pytest.mark.parametrize(("variant", "kafka_port"), [("development", 9092), ("production", 9093)])
def test_network_policies_deny_by_default_and_open_only_what_is_needed(
    rendered: dict[str, list[Document]], variant: str, kafka_port: int
) -> None:
    policies = _by_kind(rendered[variant], "NetworkPolicy")
    assert policies["default-deny-all"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    egress_ports = {
        port["port"] for rule in policies["lotse-egress"]["spec"]["egress"] for port in rule.get("ports", [])
    }
    assert egress_ports == {53, kafka_port, 27017, 443}
    smtp = {port["port"] for port in policies["lotse-notifications-egress"]["spec"]["egress"][0]["ports"]}
    # Development adds Mailpit's port.
    assert smtp == {25, 465, 587} | ({1025} if variant == "development" else set())
    assert policies["lotse-notifications-egress"]["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "lotse-notifications"
    }
    pods = {
        name: deployment["spec"]["template"]["metadata"]["labels"]
        for name, deployment in _by_kind(rendered[variant], "Deployment").items()
    }
    # The services get Kafka; the portal does not: its own policy opens DNS, the three APIs, MongoDB
    # and the OpenID provider (HTTPS), nothing else.
    selects = policies["lotse-egress"]["spec"]["podSelector"]["matchLabels"].items()
    assert {name for name, labels in pods.items() if selects <= labels.items()} == {f"lotse-{n}" for n in SERVICES}
    portal = policies["lotse-portal-egress"]["spec"]
    assert portal["podSelector"]["matchLabels"].items() <= pods["lotse-portal"].items()
    assert {port["port"] for rule in portal["egress"] for port in rule["ports"]} == {53, 27017, 443, *SERVICES.values()}
    assert "strimzi" not in str(portal)
    for name, port in SERVICES.items():
        # ... and each service admits the portal on its API port (and the portal may go there).
        assert _admits(policies[f"lotse-{name}-ingress"]["spec"]["ingress"], pods["lotse-portal"], port)
        assert _admits(portal["egress"], pods[f"lotse-{name}"], port)
        assert not _admits(portal["egress"], pods[f"lotse-{name}"], METRICS_PORT)


def _admits(rules: list[Document], pod_labels: dict[str, str], port: int) -> bool:
    """Whether a rule of a policy lets traffic to or from a pod of this namespace with these labels
    pass on this port (peers of other namespaces or by address are not this pod)."""

    def peer_matches(peer: Document) -> bool:
        if "namespaceSelector" in peer or "ipBlock" in peer:
            return False
        return peer["podSelector"].get("matchLabels", {}).items() <= pod_labels.items()

    for rule in rules:
        peers = rule.get("from", rule.get("to"))
        on_port = "ports" not in rule or any(p["port"] == port for p in rule["ports"])
        if on_port and (peers is None or any(peer_matches(peer) for peer in peers)):
            return True
    return False


def test_every_referenced_configmap_exists_and_secrets_are_declared(rendered: dict[str, list[Document]]) -> None:
    for variant, docs in rendered.items():
        configmaps = _by_kind(docs, "ConfigMap")
        for deployment in _by_kind(docs, "Deployment").values():
            for source in deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]:
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps, variant
        for auth in _by_kind(docs, "TriggerAuthentication").values():
            for ref in auth["spec"]["configMapTargetRef"]:
                assert ref["key"] in configmaps[ref["name"]]["data"], (variant, ref)


@pytest.mark.parametrize("variant", list(RENDERED))
def test_no_secret_is_committed_for_either_overlay(rendered: dict[str, list[Document]], variant: str) -> None:
    assert not [doc for doc in rendered[variant] if doc["kind"] == "Secret"]
    for configmap in _by_kind(rendered[variant], "ConfigMap").values():
        secrets = [key for key in configmap.get("data", {}) if SECRET_VARIABLE.search(key)]
        assert not secrets, (configmap["metadata"]["name"], secrets)
    # Each service and the portal still read their Secret, which operators create (deploy/k8s/README.md).
    for name in WORKLOADS:
        deployment = _by_kind(rendered[variant], "Deployment")[f"lotse-{name}"]
        sources = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        assert {"secretRef": {"name": f"lotse-{name}-env"}} in sources


def _environment(docs: list[Document], workload: str) -> dict[str, str]:
    """What a workload's container reads from its ConfigMaps (its Secrets are the operators')."""
    configmaps = _by_kind(docs, "ConfigMap")
    deployment = _by_kind(docs, "Deployment")[f"lotse-{workload}"]
    environment: dict[str, str] = {}
    for source in deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]:
        if "configMapRef" in source:
            environment.update(configmaps[source["configMapRef"]["name"]].get("data", {}))
    return environment


@pytest.mark.parametrize("variant", ["development", "production"])
def test_every_workload_is_told_the_token_issuer_and_its_key_set(
    rendered: dict[str, list[Document]], variant: str
) -> None:
    # A service without either refuses to start (lotse_runtime.settings).
    for workload in WORKLOADS:
        environment = _environment(rendered[variant], workload)
        issuer, key_set = environment["LOTSE_JWT_ISSUER"], environment["LOTSE_JWT_JWKS_URL"]
        assert issuer.startswith("https://") and key_set.startswith(issuer.rstrip("/") + "/"), (workload, key_set)


def test_production_trusts_forwarded_addresses_from_the_ingress_controller_only(
    rendered: dict[str, list[Document]],
) -> None:
    # The Ingress sends people to the portal and to matching (answer pages, calendar feeds): their
    # per-client rate limits count the visitor only if uvicorn trusts the controller's header.
    for workload in WORKLOADS:
        trusted = _environment(rendered["production"], workload).get("FORWARDED_ALLOW_IPS")
        if workload not in ("portal", "matching"):
            assert trusted is None, workload
            continue
        assert trusted is not None and "*" not in trusted, workload
        for network in trusted.split(","):
            ipaddress.ip_network(network.strip())
    for workload in WORKLOADS:  # no Ingress in development: only matching's replicas forward there
        trusted = _environment(rendered["development"], workload).get("FORWARDED_ALLOW_IPS")
        assert (trusted is not None) == (workload == "matching"), workload


@pytest.mark.parametrize("variant", ["development", "production"])
def test_matching_trusts_the_addresses_its_other_replicas_forward(
    rendered: dict[str, list[Document]], variant: str
) -> None:
    # A replica forwards a request of a tenant another one matches for to that one's pod address,
    # with the caller's address in X-Forwarded-For: the owner must trust the pod network, or its
    # per-client rate limits count the forwarding replica for every anonymous caller.
    trusted = _environment(rendered[variant], "matching")["FORWARDED_ALLOW_IPS"]
    networks = [ipaddress.ip_network(network.strip()) for network in trusted.split(",")]
    assert "*" not in trusted
    assert all(network.is_private for network in networks)


def test_production_uses_sasl_ssl_more_replicas_and_replicated_topics(rendered: dict[str, list[Document]]) -> None:
    docs = rendered["production"]
    problems = kubernetes_kafka_problems(docs, tls=True)
    assert not problems, "\n".join(problems)
    platform = _by_kind(docs, "ConfigMap")["lotse-platform"]["data"]
    assert platform["LOTSE_JWT_JWKS_URL"].startswith("https://")
    assert "LOTSE_JWT_HS256_KEY" not in platform
    for deployment in _by_kind(docs, "Deployment").values():
        assert deployment["spec"]["replicas"] >= 3
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert platform["SSL_CERT_FILE"].rsplit("/", 1)[0] in mounts
        (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
        assert init["image"] == container["image"]
        assert platform["SSL_CERT_FILE"] in init["command"][-1]
        assert init["securityContext"]["readOnlyRootFilesystem"] is True
    for topic in _by_kind(docs, "KafkaTopic").values():
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == 2
    scaled_objects = _by_kind(docs, "ScaledObject")
    assert set(scaled_objects) == {f"lotse-{name}" for name in SERVICES}
    for scaled in scaled_objects.values():
        assert scaled["spec"]["minReplicaCount"] >= 2


@pytest.mark.parametrize("variant", list(RENDERED))
def test_matching_scales_like_the_other_services(rendered: dict[str, list[Document]], variant: str) -> None:
    """Matching partitions its work by tenant (issue 19): rolling updates, a PodDisruptionBudget and a
    KEDA scaler that follows its groups' lag, the work topic's included, up to the work topic's
    partitions (a replica more would hold none of them)."""
    docs = rendered[variant]
    deployments = _by_kind(docs, "Deployment")
    for name in SERVICES:
        assert deployments[f"lotse-{name}"]["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        }, name
        assert _by_kind(docs, "PodDisruptionBudget")[f"lotse-{name}"]["spec"]["maxUnavailable"] == 1
    scaled = _by_kind(docs, "ScaledObject")["lotse-matching"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == "lotse-matching"
    groups = {trigger["metadata"]["topic"]: trigger["metadata"]["consumerGroup"] for trigger in scaled["triggers"]}
    assert groups[MATCHING_WORK.name] == "lotse-matching-work"
    assert {"lotse-matching", "lotse-matching-partner", "lotse-matching-person-keys"} <= set(groups.values())
    if variant == "development":
        assert scaled["maxReplicaCount"] == 2
    else:
        assert scaled["maxReplicaCount"] == MATCHING_WORK.partitions == 12
    if variant == "base":
        assert deployments["lotse-matching"]["spec"]["replicas"] == deployments["lotse-registry"]["spec"]["replicas"]


@pytest.mark.parametrize("variant", list(RENDERED))
def test_each_matching_replica_is_told_its_own_pod_address(rendered: dict[str, list[Document]], variant: str) -> None:
    """The Service would reach any replica; a forwarded request must reach the tenant's owner."""
    (container,) = _by_kind(rendered[variant], "Deployment")["lotse-matching"]["spec"]["template"]["spec"]["containers"]
    env = [variable["name"] for variable in container["env"]]
    variables = {variable["name"]: variable for variable in container["env"]}
    assert variables["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert variables["LOTSE_REPLICA_URL"]["value"] == "http://$(POD_IP):8002"
    # Kubernetes expands $(POD_IP) only from variables defined before it.
    assert env.index("POD_IP") < env.index("LOTSE_REPLICA_URL")
    assert {"name": "http", "containerPort": 8002, "protocol": "TCP"} in container["ports"]
    for name in ("registry", "notifications"):
        (other,) = _by_kind(rendered[variant], "Deployment")[f"lotse-{name}"]["spec"]["template"]["spec"]["containers"]
        assert "LOTSE_REPLICA_URL" not in {variable["name"] for variable in other.get("env", [])}


@pytest.mark.parametrize("variant", list(RENDERED))
def test_matching_pods_may_reach_each_other_on_the_api_port(rendered: dict[str, list[Document]], variant: str) -> None:
    policies = _by_kind(rendered[variant], "NetworkPolicy")
    pods = {
        name: deployment["spec"]["template"]["metadata"]["labels"]
        for name, deployment in _by_kind(rendered[variant], "Deployment").items()
    }
    matching = pods["lotse-matching"]
    egress = [
        policy["spec"]
        for policy in policies.values()
        if "Egress" in policy["spec"]["policyTypes"]
        and policy["spec"]["podSelector"].get("matchLabels", {}).items() <= matching.items()
        and policy["spec"].get("egress")
    ]
    assert any(_admits(spec["egress"], matching, SERVICES["matching"]) for spec in egress)
    assert not any(_admits(spec["egress"], matching, METRICS_PORT) for spec in egress)
    assert _admits(policies["lotse-matching-ingress"]["spec"]["ingress"], matching, SERVICES["matching"])
    # Only matching forwards: registry and notifications get no way to matching's pods.
    peer = policies["lotse-matching-egress"]["spec"]
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "lotse-matching"}
    assert not peer["podSelector"]["matchLabels"].items() <= pods["lotse-registry"].items()


def test_development_authenticates_with_scram_without_tls_and_runs_one_replica(
    rendered: dict[str, list[Document]],
) -> None:
    docs = rendered["development"]
    problems = kubernetes_kafka_problems(docs, tls=False)
    assert not problems, "\n".join(problems)
    assert {doc["metadata"]["namespace"] for doc in docs} == {"lotse-dev"}
    assert all(deployment["spec"]["replicas"] == 1 for deployment in _by_kind(docs, "Deployment").values())


@pytest.mark.parametrize(
    ("kind", "name", "path", "value"),
    [
        pytest.param(
            "ConfigMap", "lotse-platform", "/data/LOTSE_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT", id="no-tls"
        ),
        pytest.param(
            "ConfigMap",
            "lotse-platform",
            "/data/LOTSE_KAFKA_BOOTSTRAP",
            "lotse-kafka-bootstrap.kafka.svc:9092",
            id="plain-listener",
        ),
        pytest.param("ConfigMap", "lotse-platform", "/data/SSL_CERT_FILE", "", id="no-ca-bundle"),
        pytest.param("ConfigMap", "lotse-kafka-scaler", "/data/tls", "disable", id="scaler-without-tls"),
        pytest.param(
            "ConfigMap", "lotse-matching-config", "/data/LOTSE_KAFKA_USERNAME", "lotse-registry", id="shared-user"
        ),
        pytest.param(
            "Deployment",
            "lotse-registry",
            "/spec/template/spec/containers/0/env/0/valueFrom/secretKeyRef/optional",
            True,
            id="optional-password",
        ),
        pytest.param(
            "TriggerAuthentication",
            "lotse-notifications-kafka",
            "/spec/secretTargetRef/1",
            None,
            id="scaler-without-ca",
        ),
        pytest.param(
            "NetworkPolicy",
            "lotse-egress",
            "/spec/egress/1/ports/-",
            {"port": 9092, "protocol": "TCP"},
            id="egress-to-plain-listener",
        ),
        pytest.param("KafkaUser", "lotse-matching", "/spec/authentication/type", "tls", id="user-without-scram"),
    ],
)
def test_production_without_tls_or_own_scram_users_is_refused(
    rendered: dict[str, list[Document]], kind: str, name: str, path: str, value: object
) -> None:
    docs = copy.deepcopy(rendered["production"])
    (doc,) = [doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name]
    apply_operation(
        doc, {"op": "remove", "path": path} if value is None else {"op": "add", "path": path, "value": value}
    )
    assert kubernetes_kafka_problems(docs, tls=True)


def test_the_rendered_kafka_users_grant_least_privilege(rendered: dict[str, list[Document]]) -> None:
    tenants = load_tenants(K8S / "tenants.yaml")
    for variant in ("development", "production"):
        problems = acl_problems(kafka_user_grants(rendered[variant]), tenants)
        assert not problems, (variant, problems)


def test_a_partner_user_reading_its_dead_letters_is_refused(rendered: dict[str, list[Document]]) -> None:
    tenants = load_tenants(K8S / "tenants.yaml")
    docs = copy.deepcopy(rendered["production"])
    (partner,) = [doc for doc in docs if doc["metadata"]["name"] == f"lotse-partner-{tenants[0]}"]
    inbound = f"lotse.partner.{tenants[0]}.inbound.v1.dlq"
    acl = {
        "resource": {"type": "topic", "name": inbound, "patternType": "literal"},
        "operations": ["Read"],
        "host": "*",
    }
    partner["spec"]["authorization"]["acls"].append(acl)
    assert any("unexpected ['Read']" in problem for problem in acl_problems(kafka_user_grants(docs), tenants))


def test_a_position_guarded_patch_fails_when_the_position_holds_something_else() -> None:
    doc = {"spec": {"egress": [{"ports": [53]}, {"to": "mongodb"}]}}
    with pytest.raises(KustomizeError):
        apply_operation(doc, {"op": "test", "path": "/spec/egress/1/to", "value": "kafka"})
    apply_operation(doc, {"op": "test", "path": "/spec/egress/1/to", "value": "mongodb"})


def test_production_serves_the_portal_over_tls_at_its_public_url(rendered: dict[str, list[Document]]) -> None:
    docs = rendered["production"]
    configmaps = _by_kind(docs, "ConfigMap")
    public_url = configmaps["lotse-portal-config"]["data"]["LOTSE_PUBLIC_URL"]
    host = public_url.removeprefix("https://")
    assert public_url.startswith("https://") and "/" not in host
    (ingress,) = _by_kind(docs, "Ingress").values()
    assert ingress["spec"]["tls"] == [{"hosts": [host], "secretName": "lotse-portal-tls"}]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == host
    backends = {path["path"]: path["backend"]["service"] for path in rule["http"]["paths"]}
    assert backends["/"] == {"name": "lotse-portal", "port": {"name": "http"}}
    # The answer links in proposal mails point at this host too, and reach matching's answer pages only.
    assert configmaps["lotse-notifications-config"]["data"]["LOTSE_ANSWER_LINK_BASE_URL"] == public_url
    matching = {"name": "lotse-matching", "port": {"name": "http"}}
    assert backends == {"/": backends["/"], "/answers": matching, "/calendar-feeds": matching}
    # The other overlays ship no Ingress: the portal is reached by port-forward there.
    assert not _by_kind(rendered["development"], "Ingress") and not _by_kind(rendered["base"], "Ingress")
    assert configmaps["lotse-portal-config"]["data"]["LOTSE_OIDC_CLIENT_ID"] == "lotse-portal"
