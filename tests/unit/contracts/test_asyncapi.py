"""The AsyncAPI document describes every topic and event type.

The structural test always runs; the official validator runs too where an
`asyncapi` binary is available (LOTSE_ASYNCAPI_BIN or PATH).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lotse_contracts import EVENT_TYPES
from lotse_contracts.asyncapi import asyncapi_yaml
from lotse_contracts.export import export
from lotse_contracts.topics import ALL_TOPICS


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return yaml.safe_load(asyncapi_yaml())


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_it_is_asyncapi_3(document: dict[str, Any]) -> None:
    assert document["asyncapi"].startswith("3.")
    assert document["servers"]["production"]["protocol"] == "kafka-secure"
    assert document["components"]["securitySchemes"]["scram"]["type"] == "scramSha512"


def test_every_catalogue_topic_is_a_channel(document: dict[str, Any]) -> None:
    addresses = {channel["address"] for channel in document["channels"].values()}

    assert {topic.name for topic in ALL_TOPICS} <= addresses
    assert "lotse.partner.{tenant}.inbound.v1" in addresses
    assert "lotse.matching.proposals.v1.dlq" in addresses


def test_the_partner_channel_has_a_tenant_parameter(document: dict[str, Any]) -> None:
    assert "tenant" in document["channels"]["partnerInbound"]["parameters"]


def test_every_event_type_is_a_message_with_a_payload_schema(document: dict[str, Any]) -> None:
    messages = {message["title"]: message for message in document["components"]["messages"].values()}

    for event_type in EVENT_TYPES:
        payload = resolve(document, messages[event_type]["payload"]["$ref"])
        assert payload["properties"]["type"]["const"] == event_type
        assert "data" in payload["required"]
        assert messages[event_type]["bindings"]["kafka"]["key"]["type"] == "string"


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return own + [ref for value in node.values() for ref in refs(value)]
        if isinstance(node, list):
            return [ref for item in node for ref in refs(item)]
        return []

    for ref in refs(document):
        assert resolve(document, ref) is not None, ref


def test_each_operation_uses_messages_of_its_own_channel(document: dict[str, Any]) -> None:
    for name, operation in document["operations"].items():
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel + "/messages/"), name
    assert document["operations"]["matchingReceivePartnerInbound"]["messages"] == [
        {"$ref": "#/channels/partnerInbound/messages/AcceptProposal"},
        {"$ref": "#/channels/partnerInbound/messages/DeclineProposal"},
    ]


def asyncapi_binary() -> str | None:
    return os.environ.get("LOTSE_ASYNCAPI_BIN") or shutil.which("asyncapi")


@pytest.mark.skipif(
    asyncapi_binary() is None,
    reason="no asyncapi CLI (set LOTSE_ASYNCAPI_BIN or put `asyncapi` on PATH; npm install @asyncapi/cli)",
)
def test_the_official_validator_accepts_the_document(tmp_path: Path) -> None:
    export(tmp_path)
    binary = asyncapi_binary()
    assert binary is not None

    completed = subprocess.run(
        [binary, "validate", str(tmp_path / "asyncapi.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "is valid" in completed.stdout + completed.stderr
