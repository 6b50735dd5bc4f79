"""The deployment files and the services agree: every LOTSE_ variable the compose file and the
manifests set is a setting the service reads, and the consumer groups in the Kafka ACLs and KEDA
scalers are the ones the services use. A service whose settings module does not exist yet is
skipped, so this guards the wiring once the service is there."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml
from pydantic_settings import BaseSettings

from lotse_cli.deploy_commands import CONSUMER_GROUPS, render_compose_secrets
from lotse_contracts import Service
from tests.unit.deploy.kustomize import render
from tests.unit.deploy.validation import RENDERED, ROOT, WORKLOADS


def _settings_class(service: str) -> type[BaseSettings]:
    try:
        module = importlib.import_module(f"lotse_{service}.settings")
    except ImportError:
        pytest.skip(f"lotse_{service}.settings does not exist yet")
    classes = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseSettings) and cls.__module__ == module.__name__
    ]
    if len(classes) != 1:
        pytest.skip(f"lotse_{service}.settings has no single settings class")
    return classes[0]


def _variables_set_for(service: str) -> dict[str, str]:
    """LOTSE_ variable -> where it is set, over compose and both overlays."""
    found = {}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in compose["services"][service]["environment"]:
        found[name] = "docker-compose.yml"
    # The env files are generated per machine (`lotse deploy compose-secrets`); their names as generated.
    generated = render_compose_secrets(ROOT / "deploy" / "compose")
    env_file = compose["services"][service].get("env_file", [])
    for path in [env_file] if isinstance(env_file, str) else env_file:
        lines = generated[Path(path).name].splitlines()
        for name in (line.split("=", 1)[0] for line in lines if "=" in line and not line.startswith("#")):
            found.setdefault(name, path)
    for variant in ("development", "production"):
        docs = render(Path(RENDERED[variant]))
        sources = {"lotse-platform", f"lotse-{service}-config", f"lotse-{service}-env"}
        for doc in docs:
            if doc["kind"] in {"ConfigMap", "Secret"} and doc["metadata"]["name"] in sources:
                for name in {**doc.get("data", {}), **doc.get("stringData", {})}:
                    found.setdefault(name, f"{variant}: {doc['kind']} {doc['metadata']['name']}")
            if doc["kind"] == "Deployment" and doc["metadata"]["name"] == f"lotse-{service}":
                for variable in doc["spec"]["template"]["spec"]["containers"][0].get("env", []):
                    found.setdefault(variable["name"], f"{variant}: Deployment env")
    dockerfile = (ROOT / "deploy" / "docker" / f"{service}.Dockerfile").read_text()
    for name in ("LOTSE_HTTP_HOST", "LOTSE_HTTP_PORT"):
        if name in dockerfile:
            found.setdefault(name, f"{service}.Dockerfile")
    return {name: where for name, where in found.items() if name.startswith("LOTSE_")}


@pytest.mark.parametrize("service", list(WORKLOADS))
def test_every_variable_set_for_a_service_is_one_of_its_settings(service: str) -> None:
    settings = _settings_class(service)
    prefix = settings.model_config.get("env_prefix", "")
    fields = {prefix + name.upper() for name in settings.model_fields}
    unknown = {name: where for name, where in _variables_set_for(service).items() if name not in fields}
    assert not unknown, f"lotse_{service} reads no such setting: {unknown}"


@pytest.mark.parametrize("service", list(WORKLOADS))
def test_the_service_listens_on_the_port_of_its_manifests(service: str) -> None:
    fields = _settings_class(service).model_fields
    assert "http_host" in fields
    assert fields["http_port"].default == WORKLOADS[service]


def test_consumer_groups_of_the_acls_and_scalers_are_the_services_own() -> None:
    registry = _settings_class("registry").model_fields
    assert set(CONSUMER_GROUPS[Service.REGISTRY].values()) == {
        f"{registry['consumer_group'].default}.partner",
        f"{registry['consumer_group'].default}.outcomes",
    }
    matching = _settings_class("matching").model_fields
    assert set(CONSUMER_GROUPS[Service.MATCHING].values()) == {
        matching["consumer_group"].default,
        matching["partner_consumer_group"].default,
        matching["person_keys_consumer_group"].default,
        matching["work_consumer_group"].default,
    }
    notifications = _settings_class("notifications").model_fields
    assert set(CONSUMER_GROUPS[Service.NOTIFICATIONS].values()) == {
        notifications["consumer_group"].default,
        notifications["person_keys_consumer_group"].default,
    }
