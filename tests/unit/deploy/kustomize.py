"""A small renderer for the subset of kustomize that deploy/k8s uses, so the tests need no binary.

Supported: `resources` (files and folders with a kustomization.yaml), `namespace`, `labels`
(pairs, without selectors or templates), `images`, `replicas` and `patches` that are JSON 6902
operation lists (add, replace, remove, test) with a `target` (group, version, kind, name,
labelSelector). Any other field, and a
patch target that matches nothing, is an error, so an overlay cannot silently use something this
renderer ignores. Where `kubectl kustomize` is installed, a test checks that both render the same.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Document = dict[str, Any]

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "replicas", "patches"}


class KustomizeError(ValueError):
    pass


def load_documents(path: Path) -> list[Document]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def render(directory: Path) -> list[Document]:
    """The resources of a kustomization folder after its transformations."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unsupported = set(kustomization) - SUPPORTED
    if unsupported:
        raise KustomizeError(f"{directory}: unsupported kustomization fields {sorted(unsupported)}")
    documents: list[Document] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        documents.extend(render(path) if path.is_dir() else load_documents(path))
    for label_set in kustomization.get("labels", []):
        if label_set.get("includeSelectors") or label_set.get("includeTemplates"):
            raise KustomizeError(f"{directory}: labels with selectors or templates are not supported")
        for doc in documents:
            doc.setdefault("metadata", {}).setdefault("labels", {}).update(label_set["pairs"])
    for patch in kustomization.get("patches", []):
        _apply_patch(directory, documents, patch)
    if "namespace" in kustomization:
        for doc in documents:
            doc.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    for image in kustomization.get("images", []):
        _set_image(documents, image)
    for replica in kustomization.get("replicas", []):
        matched = [
            doc for doc in documents if doc["kind"] == "Deployment" and doc["metadata"]["name"] == replica["name"]
        ]
        if not matched:
            raise KustomizeError(f"{directory}: replicas for unknown Deployment {replica['name']!r}")
        for doc in matched:
            doc["spec"]["replicas"] = replica["count"]
    return documents


def _matches(doc: Document, target: dict[str, str]) -> bool:
    # As in kustomize, a field the target leaves out matches anything.
    group, _, version = doc["apiVersion"].rpartition("/")
    if "group" in target and target["group"] != group:
        return False
    if "version" in target and target["version"] != version:
        return False
    if "kind" in target and target["kind"] != doc["kind"]:
        return False
    if "name" in target and target["name"] != doc["metadata"]["name"]:
        return False
    if "labelSelector" in target:
        labels = doc["metadata"].get("labels", {})
        for term in target["labelSelector"].split(","):
            key, _, value = term.partition("=")
            if labels.get(key.strip()) != value.strip():
                return False
    return True


def _apply_patch(directory: Path, documents: list[Document], patch: dict[str, Any]) -> None:
    target = patch.get("target")
    operations = yaml.safe_load(patch["patch"]) if "patch" in patch else None
    if not target or not isinstance(operations, list):
        raise KustomizeError(f"{directory}: only JSON 6902 patches with a target are supported: {patch}")
    matched = [doc for doc in documents if _matches(doc, target)]
    if not matched:
        raise KustomizeError(f"{directory}: patch target {target} matches no resource")
    for doc in matched:
        for operation in operations:
            apply_operation(doc, operation)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"not a JSON pointer: {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def apply_operation(doc: Document, operation: dict[str, Any]) -> None:
    """One JSON patch (RFC 6902) operation: add, replace, remove or test."""
    *parents, last = _pointer(operation["path"])
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    op = operation["op"]
    value = copy.deepcopy(operation.get("value"))
    if op == "test":
        # Guards a patch by position: it fails unless the value there is the expected one.
        actual = node[int(last)] if isinstance(node, list) else node.get(last)
        if actual != value:
            raise KustomizeError(f"test of {operation['path']!r} failed: {actual!r} != {value!r}")
        return
    if isinstance(node, list):
        if op == "add":
            node.append(value) if last == "-" else node.insert(int(last), value)
        elif op == "replace":
            node[int(last)] = value
        elif op == "remove":
            del node[int(last)]
        else:
            raise KustomizeError(f"unsupported patch operation {op!r}")
        return
    if op in {"replace", "remove"} and last not in node:
        raise KustomizeError(f"{op} of missing path {operation['path']!r}")
    if op in {"add", "replace"}:
        node[last] = value
    elif op == "remove":
        del node[last]
    else:
        raise KustomizeError(f"unsupported patch operation {op!r}")


def _set_image(documents: list[Document], image: dict[str, str]) -> None:
    for doc in documents:
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            name = container["image"].split("@")[0].rsplit(":", 1)[0]
            if name == image["name"]:
                tag = image.get("newTag", container["image"].rsplit(":", 1)[-1])
                container["image"] = f"{image.get('newName', name)}:{tag}"
