"""Is a new event schema a compatible successor of its published snapshot?

A published v1 contract must never break its consumers or producers. Breaking:
a removed (or renamed) field, a changed type, a new required field, a field
becoming required, a removed enum value or union variant, a tightened
constraint. Compatible additions: new optional fields, new enum values, new
union variants, loosened constraints. A breaking change needs a new `.v2`
event type instead.

Schemas are compared after resolving `$ref`s, so moving a definition around
is not a change; titles, descriptions and examples are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lotse_contracts.schemas import event_schemas

# Constraint -> True if a larger value is tighter.
_LOWER_BOUNDS = {"minimum": True, "exclusiveMinimum": True, "minLength": True, "minItems": True}
_UPPER_BOUNDS = {"maximum": False, "exclusiveMaximum": False, "maxLength": False, "maxItems": False}
_EXACT = ("pattern", "format", "const", "multipleOf")


@dataclass
class Comparison:
    """Differences of one event type's schema from its snapshot, one line each."""

    breaking: list[str] = field(default_factory=list)
    additions: list[str] = field(default_factory=list)


@dataclass
class CheckResult:
    breaking: list[str] = field(default_factory=list)
    additions: list[str] = field(default_factory=list)
    new_types: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaking


def compare_schemas(event_type: str, old: dict[str, Any], new: dict[str, Any]) -> Comparison:
    """Compare two JSON Schemas of one event type; lines read `<type>: <path>: <change>`."""
    result = Comparison()
    _compare(_resolve(old, old), _resolve(new, new), "", result)
    result.breaking = [f"{event_type}: {line}" for line in result.breaking]
    result.additions = [f"{event_type}: {line}" for line in result.additions]
    return result


def check_against_snapshots(snapshot_dir: Path) -> CheckResult:
    """Compare every current event schema with its committed snapshot."""
    result = CheckResult()
    current = event_schemas()
    for event_type, schema in current.items():
        path = snapshot_dir / f"{event_type}.json"
        if not path.exists():
            result.new_types.append(event_type)
            continue
        comparison = compare_schemas(event_type, json.loads(path.read_text()), schema)
        result.breaking += comparison.breaking
        result.additions += comparison.additions
    for path in sorted(snapshot_dir.glob("*.json")):
        if path.stem not in current:
            result.breaking.append(f"{path.stem}: event type removed")
    return result


def write_snapshots(snapshot_dir: Path) -> list[Path]:
    """Rewrite the snapshots from the code (after a deliberate, compatible change)."""
    snapshot_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, schema in event_schemas().items():
        path = snapshot_dir / f"{event_type}.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
        written.append(path)
    return written


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, root) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return _resolve({**target, **siblings}, root)
    return {key: _resolve(value, root) for key, value in node.items() if key != "$defs"}


def _compare(old: dict[str, Any], new: dict[str, Any], path: str, result: Comparison) -> None:
    where = path or "(root)"
    old_types, new_types = _types(old), _types(new)
    if old_types != new_types:
        result.breaking.append(f"{where}: type changed {_show(old_types)} -> {_show(new_types)}")
        return
    _compare_enum(old, new, where, result)
    _compare_constraints(old, new, where, result)
    _compare_properties(old, new, path, result)
    if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
        _compare(old["items"], new["items"], f"{path}[]", result)
    _compare_variants(old, new, path, result)


def _types(schema: dict[str, Any]) -> frozenset[str]:
    """The JSON types a schema admits, looking through anyOf/oneOf and enums."""
    if "type" in schema:
        declared = schema["type"]
        return frozenset(declared if isinstance(declared, list) else [declared])
    variants = schema.get("anyOf") or schema.get("oneOf")
    if variants:
        return frozenset().union(*(_types(v) for v in variants))
    values = schema.get("enum") or ([schema["const"]] if "const" in schema else [])
    return frozenset(_json_type(v) for v in values)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _show(types: frozenset[str]) -> str:
    return "|".join(sorted(types)) or "any"


def _compare_enum(old: dict[str, Any], new: dict[str, Any], where: str, result: Comparison) -> None:
    if "enum" not in old and "enum" not in new:
        return
    if "enum" not in new:
        result.additions.append(f"{where}: enum restriction dropped")
        return
    old_values, new_values = old.get("enum"), new["enum"]
    if old_values is None:
        result.breaking.append(f"{where}: now restricted to {new_values}")
        return
    removed = [v for v in old_values if v not in new_values]
    added = [v for v in new_values if v not in old_values]
    if removed:
        result.breaking.append(f"{where}: enum value(s) removed: {', '.join(map(str, removed))}")
    if added:
        result.additions.append(f"{where}: enum value(s) added: {', '.join(map(str, added))}")


def _compare_constraints(old: dict[str, Any], new: dict[str, Any], where: str, result: Comparison) -> None:
    for name, larger_is_tighter in {**_LOWER_BOUNDS, **_UPPER_BOUNDS}.items():
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if after is None:
            result.additions.append(f"{where}: {name} {before} dropped")
        elif before is None or (after > before) == larger_is_tighter:
            result.breaking.append(f"{where}: {name} tightened {before} -> {after}")
        else:
            result.additions.append(f"{where}: {name} loosened {before} -> {after}")
    for name in _EXACT:
        if old.get(name) != new.get(name):
            if name in new:
                result.breaking.append(f"{where}: {name} changed {old.get(name)!r} -> {new[name]!r}")
            else:
                result.additions.append(f"{where}: {name} {old[name]!r} dropped")
    if old.get("additionalProperties") is not False and new.get("additionalProperties") is False:
        result.breaking.append(f"{where}: additional properties now refused")


def _compare_properties(old: dict[str, Any], new: dict[str, Any], path: str, result: Comparison) -> None:
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    for name, old_prop in old_props.items():
        child = f"{path}.{name}" if path else name
        if name not in new_props:
            result.breaking.append(f"{child}: field removed")
            continue
        if name in new_required and name not in old_required:
            result.breaking.append(f"{child}: field became required")
        elif name in old_required and name not in new_required:
            result.additions.append(f"{child}: field became optional")
        _compare(old_prop, new_props[name], child, result)
    for name in new_props.keys() - old_props.keys():
        child = f"{path}.{name}" if path else name
        if name in new_required:
            result.breaking.append(f"{child}: new required field")
        else:
            result.additions.append(f"{child}: new optional field")


def _compare_variants(old: dict[str, Any], new: dict[str, Any], path: str, result: Comparison) -> None:
    old_variants = _variants(old)
    new_variants = _variants(new)
    if not old_variants and not new_variants:
        return
    for label, variant in old_variants.items():
        if label not in new_variants:
            result.breaking.append(f"{path or '(root)'}: variant {label} removed")
        else:
            _compare(variant, new_variants[label], f"{path}<{label}>" if label != "value" else path, result)
    for label in new_variants.keys() - old_variants.keys():
        result.additions.append(f"{path or '(root)'}: variant {label} added")


def _variants(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Non-null anyOf/oneOf variants, labelled by their discriminator const or position."""
    labelled: dict[str, dict[str, Any]] = {}
    options = [v for v in schema.get("anyOf") or schema.get("oneOf") or [] if v.get("type") != "null"]
    for index, variant in enumerate(options):
        consts = [p["const"] for p in variant.get("properties", {}).values() if "const" in p]
        label = str(consts[0]) if consts else ("value" if len(options) == 1 else str(index))
        labelled[label] = variant
    return labelled
