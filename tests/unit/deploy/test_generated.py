"""The Strimzi topics and users, the KEDA scalers and the compose ACLs generated from the contract
catalogue: no drift, the right ACLs, and `lotse deploy generate | check` behaving as documented."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from lotse_cli.deploy_commands import (
    GENERATED_DIR,
    compose_drift,
    consumer_group,
    drift,
    load_tenants,
    partner_user,
    render,
    render_compose,
    scaled_object,
    service_user,
)
from lotse_cli.main import app
from lotse_contracts import PARTNER_INBOUND, TOPICS, Service, dead_letter_topic, partner_inbound_topic
from lotse_contracts.topics import MATCHING_WORK
from tests.unit.deploy.broker_security import acl_problems, kafka_user_grants, parse_kafka_acls, read_env_file
from tests.unit.deploy.validation import K8S, ROOT, kubernetes_errors

COMPOSE = ROOT / "deploy" / "compose"
TENANTS = load_tenants(K8S / "tenants.yaml")
runner = CliRunner()


def _acls(user: dict) -> dict[tuple[str, str, str], set[str]]:
    return {
        (acl["resource"]["type"], acl["resource"]["name"], acl["resource"]["patternType"]): set(acl["operations"])
        for acl in user["spec"]["authorization"]["acls"]
    }


def test_committed_generated_files_match_the_catalogue() -> None:
    problems = drift(K8S) + compose_drift(COMPOSE)
    assert not problems, "\n".join(problems) + "\nrun `uv run lotse deploy generate` and commit the result"


def test_the_tenant_list_starts_with_example_municipalities() -> None:
    assert len(TENANTS) >= 2


def test_every_catalogue_topic_and_its_dead_letter_topic_is_a_kafka_topic() -> None:
    topics = {doc["spec"]["topicName"]: doc for doc in yaml.safe_load_all(render(TENANTS)["kafka-topics.yaml"]) if doc}
    expected = {topic.name for topic in TOPICS} | {partner_inbound_topic(t) for t in TENANTS}
    consumed = {topic.name for topic in TOPICS if topic.consumers} | {partner_inbound_topic(t) for t in TENANTS}
    assert set(topics) == expected | {dead_letter_topic(name) for name in consumed}
    for topic in TOPICS:
        spec = topics[topic.name]["spec"]
        assert spec["partitions"] == topic.partitions
        assert spec["config"] == {
            "cleanup.policy": topic.cleanup_policy.value,
            "retention.ms": topic.retention_ms,
            # The compaction timing of the person keys' topic (crypto-shredding).
            **{
                name: int(value) if name.endswith(".ms") else float(value)
                for name, value in topic.configs.items()
                if name not in ("cleanup.policy", "retention.ms")
            },
        }
        assert topics[topic.name]["metadata"]["labels"]["strimzi.io/cluster"] == "lotse"


def test_rendering_is_deterministic_and_independent_of_tenant_order() -> None:
    assert render(TENANTS) == render(list(reversed(TENANTS))) == render(TENANTS)


@pytest.mark.parametrize("service", [Service.REGISTRY, Service.MATCHING, Service.NOTIFICATIONS])
def test_a_service_reads_what_it_consumes_and_writes_what_it_produces(service: Service) -> None:
    acls = _acls(service_user(service, TENANTS))
    all_topics = [*TOPICS, *(PARTNER_INBOUND.for_tenant(t) for t in TENANTS)]
    for group in {consumer_group(service, topic) for topic in all_topics if service in topic.consumers}:
        assert acls.pop(("group", group, "literal")) == {"Read", "Describe"}
    for topic in all_topics:
        expected: set[str] = set()
        if service in topic.consumers:
            expected |= {"Read", "Describe"}
        if service in topic.producers:
            expected |= {"Write", "Describe"}
        assert acls.pop(("topic", topic.name, "literal"), set()) == expected, topic.name
        dead_letters = {"Write", "Describe"} if service in topic.consumers else set()
        assert acls.pop(("topic", dead_letter_topic(topic.name), "literal"), set()) == dead_letters
    assert not acls, f"unexpected grants: {acls}"


def test_a_partner_may_write_only_its_own_inbound_topic_and_read_nothing() -> None:
    for tenant in TENANTS:
        assert _acls(partner_user(tenant)) == {
            ("topic", partner_inbound_topic(tenant), "literal"): {"Write", "Describe"}
        }


def test_the_kafka_users_grant_least_privilege() -> None:
    users = [doc for doc in yaml.safe_load_all(render(TENANTS)["kafka-users.yaml"]) if doc]
    problems = acl_problems(kafka_user_grants(users), TENANTS)
    assert not problems, "\n".join(problems)


def test_a_kafka_user_with_a_wider_grant_is_refused() -> None:
    partner = partner_user(TENANTS[0])
    partner["spec"]["authorization"]["acls"].append(
        {
            "resource": {
                "type": "topic",
                "name": dead_letter_topic(partner_inbound_topic(TENANTS[0])),
                "patternType": "literal",
            },
            "operations": ["Read"],
            "host": "*",
        }
    )
    assert acl_problems(kafka_user_grants([partner]), TENANTS[:1])


def test_compose_gets_the_same_acls_as_the_kafka_users() -> None:
    tenants = ["musterstadt", "neustadt-am-see"]
    users = [doc for doc in yaml.safe_load_all(render(tenants)["kafka-users.yaml"]) if doc]
    assert parse_kafka_acls(render_compose(tenants)["kafka-acls.txt"]) == kafka_user_grants(users)


def test_scaled_objects_follow_each_consumer_group_on_each_consumed_topic() -> None:
    for service in (Service.REGISTRY, Service.MATCHING, Service.NOTIFICATIONS):
        scaled = scaled_object(service, TENANTS)
        consumed = [t for t in [*TOPICS, *(PARTNER_INBOUND.for_tenant(x) for x in TENANTS)] if service in t.consumers]
        triggers = scaled["spec"]["triggers"]
        assert sorted(trigger["metadata"]["topic"] for trigger in triggers) == sorted(t.name for t in consumed)
        by_topic = {trigger["metadata"]["topic"]: trigger["metadata"]["consumerGroup"] for trigger in triggers}
        assert by_topic == {topic.name: consumer_group(service, topic) for topic in consumed}
        assert {trigger["type"] for trigger in triggers} == {"kafka"}
        assert scaled["spec"]["scaleTargetRef"]["name"] == f"lotse-{service.value}"
        assert scaled["spec"]["maxReplicaCount"] == max(t.partitions for t in consumed)


def test_matching_reads_its_work_topic_with_its_own_group_and_scales_to_its_partitions() -> None:
    """The work topic's group assigns the tenants to replicas (issue 19): its own group in the ACLs
    and the scaler, and as many replicas at most as the topic has partitions."""
    assert consumer_group(Service.MATCHING, MATCHING_WORK) == "lotse-matching-work"
    acls = _acls(service_user(Service.MATCHING, TENANTS))
    assert acls[("group", "lotse-matching-work", "literal")] == {"Describe", "Read"}
    # It forwards onto the topic and consumes it, and dead-letters what it cannot apply.
    assert acls[("topic", MATCHING_WORK.name, "literal")] == {"Describe", "Read", "Write"}
    assert acls[("topic", dead_letter_topic(MATCHING_WORK.name), "literal")] == {"Describe", "Write"}
    scalers = {
        doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(render(TENANTS)["scaled-objects.yaml"]) if doc
    }
    assert set(scalers) == {"lotse-registry", "lotse-matching", "lotse-notifications"}
    matching = scalers["lotse-matching"]["spec"]
    assert matching["maxReplicaCount"] == MATCHING_WORK.partitions
    assert {"topic": MATCHING_WORK.name, "consumerGroup": "lotse-matching-work"}.items() <= next(
        trigger["metadata"] for trigger in matching["triggers"] if trigger["metadata"]["topic"] == MATCHING_WORK.name
    ).items()


def test_generated_resources_satisfy_their_crd_schemas() -> None:
    problems = [
        problem
        for content in render(TENANTS).values()
        for doc in yaml.safe_load_all(content)
        if doc
        for problem in kubernetes_errors(doc)
    ]
    assert not problems, "\n".join(problems)


# --- the command ---------------------------------------------------------------------------------


@pytest.fixture
def k8s_copy(tmp_path: Path) -> Path:
    target = tmp_path / "k8s"
    shutil.copytree(K8S, target)
    return target


@pytest.fixture
def compose_copy(tmp_path: Path) -> Path:
    target = tmp_path / "compose"
    shutil.copytree(COMPOSE, target, ignore=shutil.ignore_patterns("secrets"))
    return target


def _deploy(command: str, k8s: Path, compose: Path) -> Result:
    return runner.invoke(app, ["deploy", command, "--k8s-dir", str(k8s), "--compose-dir", str(compose)])


def test_check_passes_on_the_committed_files(k8s_copy: Path, compose_copy: Path) -> None:
    result = _deploy("check", k8s_copy, compose_copy)
    assert result.exit_code == 0, result.output


def test_check_names_each_drifted_file_on_one_line(k8s_copy: Path, compose_copy: Path) -> None:
    generated = k8s_copy / GENERATED_DIR
    (generated / "kafka-topics.yaml").write_text((generated / "kafka-topics.yaml").read_text().replace("6", "7"))
    (generated / "scaled-objects.yaml").unlink()
    (generated / "old.yaml").write_text("---\n")
    acls = compose_copy / "generated" / "kafka-acls.txt"
    acls.write_text(acls.read_text() + "--allow-principal User:lotse-partner-lindenau --operation Read --topic x\n")
    result = _deploy("check", k8s_copy, compose_copy)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 4
    assert "kafka-topics.yaml: differs" in lines[0]
    assert "scaled-objects.yaml: missing" in lines[1]
    assert "old.yaml: not produced by the generator" in lines[2]
    assert "kafka-acls.txt: differs" in lines[3]


def test_generate_repairs_drift_and_adds_a_new_tenant(k8s_copy: Path, compose_copy: Path) -> None:
    (k8s_copy / GENERATED_DIR / "kafka-users.yaml").write_text("edited by hand\n")
    (k8s_copy / "tenants.yaml").write_text("tenants:\n  - musterstadt\n  - neustadt-am-see\n")
    assert _deploy("check", k8s_copy, compose_copy).exit_code == 1
    result = _deploy("generate", k8s_copy, compose_copy)
    assert result.exit_code == 0, result.output
    assert _deploy("check", k8s_copy, compose_copy).exit_code == 0
    users = (k8s_copy / GENERATED_DIR / "kafka-users.yaml").read_text()
    assert "lotse-partner-neustadt-am-see" in users
    assert "lotse-partner-beispielhausen" not in users
    second = _deploy("generate", k8s_copy, compose_copy)
    assert "0 file(s) changed" in second.output


def test_a_new_compose_tenant_gets_acls_and_a_password_of_its_own(compose_copy: Path, k8s_copy: Path) -> None:
    result = runner.invoke(app, ["deploy", "compose-secrets", "--compose-dir", str(compose_copy)])
    assert result.exit_code == 0, result.output
    credentials = compose_copy / "secrets"
    before = {path.name: path.read_text() for path in credentials.iterdir()}
    (compose_copy / "tenants.yaml").write_text("tenants:\n  - musterstadt\n  - neustadt-am-see\n")
    result = _deploy("generate", k8s_copy, compose_copy)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["deploy", "compose-secrets", "--compose-dir", str(compose_copy)])
    assert result.exit_code == 0, result.output
    grants = parse_kafka_acls((compose_copy / "generated" / "kafka-acls.txt").read_text())
    assert not acl_problems(grants, ["musterstadt", "neustadt-am-see"])
    after = {path.name: path.read_text() for path in credentials.iterdir()}
    assert "lotse-partner-lindenau.env" not in after
    new = read_env_file(credentials / "lotse-partner-neustadt-am-see.env")
    assert new["LOTSE_KAFKA_USERNAME"] == "lotse-partner-neustadt-am-see"
    assert new["LOTSE_KAFKA_PASSWORD"] not in {
        read_env_file(credentials / name)["LOTSE_KAFKA_PASSWORD"]
        for name in before
        if name in after and name.startswith("lotse-")
    }
    # Existing passwords are kept: regenerating never locks a running service out.
    assert {name: text for name, text in after.items() if name in before} == {
        name: text for name, text in before.items() if name in after
    }


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("tenants:\n  - Musterstadt\n", "is not a tenant slug"),
        ("tenants:\n  - musterstadt\n  - musterstadt\n", "listed twice"),
        ("tenant: [musterstadt]\n", "expected a mapping with a list 'tenants'"),
        ("tenants: [a\n", "not YAML"),
    ],
)
@pytest.mark.parametrize("which", ["k8s", "compose"])
def test_a_bad_tenant_list_is_refused_with_one_line(
    k8s_copy: Path, compose_copy: Path, content: str, reason: str, which: str
) -> None:
    (k8s_copy if which == "k8s" else compose_copy).joinpath("tenants.yaml").write_text(content)
    files = [*(k8s_copy / GENERATED_DIR).iterdir(), *compose_copy.rglob("*")]
    before = {path: path.read_text() for path in files if path.is_file()}
    result = _deploy("generate", k8s_copy, compose_copy)
    assert result.exit_code == 1
    assert reason in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert {path: path.read_text() for path in files if path.is_file()} == before


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["deploy", "check", "--k8s-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "tenants.yaml not found" in result.output
