"""The Strimzi topics and users and the KEDA scalers generated from the contract catalogue:
no drift, the right ACLs, and `lotse deploy generate | check` behaving as documented."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from lotse_cli.deploy_commands import (
    GENERATED_DIR,
    consumer_group,
    drift,
    load_tenants,
    partner_user,
    render,
    scaled_object,
    service_user,
)
from lotse_cli.main import app
from lotse_contracts import PARTNER_INBOUND, TOPICS, Service, dead_letter_topic, partner_inbound_topic
from tests.unit.deploy.validation import K8S, kubernetes_errors

TENANTS = load_tenants(K8S / "tenants.yaml")
runner = CliRunner()


def _acls(user: dict) -> dict[tuple[str, str, str], set[str]]:
    return {
        (acl["resource"]["type"], acl["resource"]["name"], acl["resource"]["patternType"]): set(acl["operations"])
        for acl in user["spec"]["authorization"]["acls"]
    }


def test_committed_generated_files_match_the_catalogue() -> None:
    problems = drift(K8S)
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
        assert spec["config"] == {"cleanup.policy": topic.cleanup_policy.value, "retention.ms": topic.retention_ms}
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


def test_a_partner_may_write_only_its_own_inbound_topic_and_read_only_its_dead_letters() -> None:
    for tenant in TENANTS:
        inbound = partner_inbound_topic(tenant)
        assert _acls(partner_user(tenant)) == {
            ("topic", inbound, "literal"): {"Write", "Describe"},
            ("topic", dead_letter_topic(inbound), "literal"): {"Read", "Describe"},
            ("group", f"lotse-partner-{tenant}.", "prefix"): {"Read"},
        }


def test_a_partner_group_prefix_never_covers_another_tenant() -> None:
    """`musterstadt` must not reach the groups of `musterstadt-nord`."""
    (group,) = [key[1] for key in _acls(partner_user("musterstadt")) if key[0] == "group"]
    assert not "lotse-partner-musterstadt-nord.reader".startswith(group)


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


def test_check_passes_on_the_committed_files(k8s_copy: Path) -> None:
    result = runner.invoke(app, ["deploy", "check", "--k8s-dir", str(k8s_copy)])
    assert result.exit_code == 0, result.output


def test_check_names_each_drifted_file_on_one_line(k8s_copy: Path) -> None:
    generated = k8s_copy / GENERATED_DIR
    (generated / "kafka-topics.yaml").write_text((generated / "kafka-topics.yaml").read_text().replace("6", "7"))
    (generated / "scaled-objects.yaml").unlink()
    (generated / "old.yaml").write_text("---\n")
    result = runner.invoke(app, ["deploy", "check", "--k8s-dir", str(k8s_copy)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 3
    assert "kafka-topics.yaml: differs" in lines[0]
    assert "scaled-objects.yaml: missing" in lines[1]
    assert "old.yaml: not produced by the generator" in lines[2]


def test_generate_repairs_drift_and_adds_a_new_tenant(k8s_copy: Path) -> None:
    (k8s_copy / GENERATED_DIR / "kafka-users.yaml").write_text("edited by hand\n")
    (k8s_copy / "tenants.yaml").write_text("tenants:\n  - musterstadt\n  - neustadt-am-see\n")
    assert runner.invoke(app, ["deploy", "check", "--k8s-dir", str(k8s_copy)]).exit_code == 1
    result = runner.invoke(app, ["deploy", "generate", "--k8s-dir", str(k8s_copy)])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["deploy", "check", "--k8s-dir", str(k8s_copy)]).exit_code == 0
    users = (k8s_copy / GENERATED_DIR / "kafka-users.yaml").read_text()
    assert "lotse-partner-neustadt-am-see" in users
    assert "lotse-partner-beispielhausen" not in users
    second = runner.invoke(app, ["deploy", "generate", "--k8s-dir", str(k8s_copy)])
    assert "0 file(s) changed" in second.output


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("tenants:\n  - Musterstadt\n", "is not a tenant slug"),
        ("tenants:\n  - musterstadt\n  - musterstadt\n", "listed twice"),
        ("tenant: [musterstadt]\n", "expected a mapping with a list 'tenants'"),
        ("tenants: [a\n", "not YAML"),
    ],
)
def test_a_bad_tenant_list_is_refused_with_one_line(k8s_copy: Path, content: str, reason: str) -> None:
    (k8s_copy / "tenants.yaml").write_text(content)
    before = {path.name: path.read_text() for path in (k8s_copy / GENERATED_DIR).iterdir()}
    result = runner.invoke(app, ["deploy", "generate", "--k8s-dir", str(k8s_copy)])
    assert result.exit_code == 1
    assert reason in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert {path.name: path.read_text() for path in (k8s_copy / GENERATED_DIR).iterdir()} == before


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["deploy", "check", "--k8s-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "tenants.yaml not found" in result.output
