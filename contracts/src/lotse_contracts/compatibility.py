"""Can the current event schemas replace their published snapshots without breaking anyone?

A topic has writers and readers (the topic catalogue names them; partner
inbound topics are written by partner systems and read by services), and
during a rolling deploy, a rollback, or while retained events are replayed,
old and new versions of both meet. So every change is judged from both sides:

- **old reader**: a reader still on the snapshot must accept what a new writer
  sends. A new field breaks it where its object refuses unknown fields; so do a
  new enum value or union variant, a widened type, a loosened or dropped
  constraint, and a field becoming optional (the old reader requires it).
- **old writer**: a reader on the new schema must accept what an old writer
  still sends (and what is still retained on the topic). A new required field
  breaks it, as do a field becoming required, a removed enum value or variant,
  a narrowed type, a tightened or added constraint, unknown fields becoming
  refused, and a removed field where the new reader refuses unknown fields.

A side without parties cannot break: a change that only old readers would
refuse is compatible on a topic nobody reads.

Unknown fields behave as the readers really treat them. Contract models refuse
them (`extra="forbid"`, published as `"additionalProperties": false`), so by
default even a new optional field breaks the old readers. A data model whose
readers should ignore unknown fields declares `extra="ignore"` (see
`lotse_contracts.base`); its JSON Schema then leaves out
`additionalProperties: false`, and the snapshot records, object by object, that
the deployed readers are tolerant. Adding a field is therefore two releases:
make the readers tolerant and refresh the snapshots (compatible: readers
accept more, writers send the same fields, since models serialise only their
declared fields), deploy; then add the optional field. Anything breaking needs
a new `.v2` event type.

Writers are taken to send only the fields their schema declares (pydantic
models serialise nothing else), which is why an open `additionalProperties`
on the writer's side is not counted as "may send anything".

Schemas are compared after resolving `$ref`s, so moving a definition around
is not a change; titles, descriptions and examples are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from lotse_contracts.schemas import event_schemas
from lotse_contracts.topics import ALL_TOPICS

# Constraint -> True if a larger value is tighter.
_BOUNDS = {
    "minimum": True,
    "exclusiveMinimum": True,
    "minLength": True,
    "minItems": True,
    "maximum": False,
    "exclusiveMaximum": False,
    "maxLength": False,
    "maxItems": False,
}
_EXACT = ("pattern", "format", "const", "multipleOf")


class Side(StrEnum):
    """Who would refuse a message because of a change."""

    OLD_READER = "old reader"  # refuses what a new writer sends
    OLD_WRITER = "old writer"  # sends what a new reader refuses


@dataclass(frozen=True)
class Change:
    """One difference between two schemas and, per side it breaks, why."""

    path: str
    what: str
    breaks: dict[Side, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Parties:
    """Who writes and who reads one event type."""

    topic: str
    writers: tuple[str, ...]
    readers: tuple[str, ...]

    def on(self, side: Side) -> tuple[str, ...]:
        return self.readers if side is Side.OLD_READER else self.writers


@dataclass
class CheckResult:
    """Findings, one line each: `<topic> <event type>: <path>: <change>...`."""

    breaking: list[str] = field(default_factory=list)
    compatible: list[str] = field(default_factory=list)
    new_types: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaking


def parties(event_type: str) -> Parties:
    """The topic carrying an event type, its writers and the readers of that type."""
    for topic in ALL_TOPICS:
        if event_type in topic.event_types and not topic.forwarded:
            readers = [service.value for service in topic.consumers if event_type in topic.types_consumed_by(service)]
            return Parties(topic.name, tuple(s.value for s in topic.producers), tuple(readers))
    raise KeyError(f"no topic carries {event_type!r}")


def compare_schemas(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every difference of `new` from `old`, with the sides each one breaks."""
    changes: list[Change] = []
    _compare(_resolve(old, old), _resolve(new, new), "", changes)
    return changes


def judge(event_type: str, changes: list[Change], who: Parties) -> CheckResult:
    """Sort changes into breaking and compatible for the parties of one event type."""
    result = CheckResult()
    for change in changes:
        prefix = f"{who.topic} {event_type}: {change.path}: {change.what}"
        broken = [side for side in change.breaks if who.on(side)]
        for side in broken:
            result.breaking.append(f"{prefix}: breaks {side} ({', '.join(who.on(side))}): {change.breaks[side]}")
        if not broken:
            nobody = [f"no {side} to break" for side in change.breaks]
            result.compatible.append(f"{prefix} ({', '.join(nobody)})" if nobody else prefix)
    return result


def check_against_snapshots(snapshot_dir: Path) -> CheckResult:
    """Judge every current event schema against its committed snapshot."""
    result = CheckResult()
    current = event_schemas()
    for event_type, schema in current.items():
        path = snapshot_dir / f"{event_type}.json"
        if not path.exists():
            result.new_types.append(event_type)
            continue
        verdict = judge(event_type, compare_schemas(json.loads(path.read_text()), schema), parties(event_type))
        result.breaking += verdict.breaking
        result.compatible += verdict.compatible
    for path in sorted(snapshot_dir.glob("*.json")):
        if path.stem not in current:
            result.breaking.append(
                f"{path.stem}: event type removed: breaks {Side.OLD_WRITER}: "
                "its events are still sent or retained, and readers now refuse an unknown type"
            )
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


def _compare(old: dict[str, Any], new: dict[str, Any], path: str, changes: list[Change]) -> None:
    where = path or "(root)"
    old_types, new_types = _types(old), _types(new)
    old, new = _without_null(old), _without_null(new)
    if old_types != new_types:
        breaks = {}
        if _admits_more(new_types, old_types):
            breaks[Side.OLD_READER] = "it refuses the newly allowed type"
        if _admits_more(old_types, new_types):
            breaks[Side.OLD_WRITER] = "it sends a type the new reader refuses"
        changes.append(Change(where, f"type changed {_show(old_types)} -> {_show(new_types)}", breaks))
        if old_types and new_types and not old_types & new_types:
            return  # nothing in common: comparing the insides says nothing more
    _compare_enum(old, new, where, changes)
    _compare_constraints(old, new, where, changes)
    _compare_unknown_fields(old, new, where, changes)
    _compare_properties(old, new, path, changes)
    if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
        _compare(old["items"], new["items"], f"{path}[]", changes)
    _compare_variants(old, new, path, changes)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`X | None` as X (its null is counted in `_types`), so making a field nullable is one change."""
    options = schema.get("anyOf") or schema.get("oneOf") or []
    not_null = [option for option in options if option.get("type") != "null"]
    if len(options) != 2 or len(not_null) != 1:
        return schema
    return {**{k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}, **not_null[0]}


def _types(schema: dict[str, Any]) -> frozenset[str]:
    """The JSON types a schema admits (empty: any), looking through anyOf/oneOf and enums."""
    if "type" in schema:
        declared = schema["type"]
        return frozenset(declared if isinstance(declared, list) else [declared])
    variants = schema.get("anyOf") or schema.get("oneOf")
    if variants:
        return frozenset().union(*(_types(v) for v in variants))
    values = schema.get("enum") or ([schema["const"]] if "const" in schema else [])
    return frozenset(_json_type(v) for v in values)


def _admits_more(wider: frozenset[str], narrower: frozenset[str]) -> bool:
    """Does `wider` admit a type that `narrower` refuses? (Every integer is a number.)"""
    if not wider:
        return bool(narrower)
    if not narrower:
        return False
    covered = narrower | ({"integer"} if "number" in narrower else set())
    return bool(wider - covered)


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


def _compare_enum(old: dict[str, Any], new: dict[str, Any], where: str, changes: list[Change]) -> None:
    if "enum" not in old and "enum" not in new:
        return
    if "enum" not in new:
        changes.append(Change(where, "enum restriction dropped", {Side.OLD_READER: "it refuses values off its list"}))
        return
    old_values, new_values = old.get("enum"), new["enum"]
    if old_values is None:
        changes.append(
            Change(where, f"now restricted to {new_values}", {Side.OLD_WRITER: "it may send values off the list"})
        )
        return
    removed = [v for v in old_values if v not in new_values]
    added = [v for v in new_values if v not in old_values]
    if removed:
        changes.append(
            Change(
                where,
                f"enum value(s) removed: {', '.join(map(str, removed))}",
                {Side.OLD_WRITER: "it still sends them"},
            )
        )
    if added:
        changes.append(
            Change(
                where,
                f"enum value(s) added: {', '.join(map(str, added))}",
                {Side.OLD_READER: "it refuses values it does not know"},
            )
        )


def _compare_constraints(old: dict[str, Any], new: dict[str, Any], where: str, changes: list[Change]) -> None:
    for name, larger_is_tighter in _BOUNDS.items():
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        if after is None:
            changes.append(Change(where, f"{name} {before} dropped", {Side.OLD_READER: "it still enforces it"}))
        elif before is None or (after > before) == larger_is_tighter:
            changes.append(
                Change(
                    where,
                    f"{name} tightened {before} -> {after}",
                    {Side.OLD_WRITER: "it may send values now out of bounds"},
                )
            )
        else:
            changes.append(
                Change(where, f"{name} loosened {before} -> {after}", {Side.OLD_READER: f"it still enforces {before}"})
            )
    for name in _EXACT:
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        breaks = {}
        if before is not None:
            breaks[Side.OLD_READER] = f"it still enforces {name} {before!r}"
        if after is not None:
            breaks[Side.OLD_WRITER] = f"it may send values that fail {name} {after!r}"
        changes.append(Change(where, f"{name} changed {before!r} -> {after!r}", breaks))


def _compare_unknown_fields(old: dict[str, Any], new: dict[str, Any], where: str, changes: list[Change]) -> None:
    if _strict(old) == _strict(new):
        return
    if _strict(new):
        changes.append(
            Change(
                where, "unknown fields now refused", {Side.OLD_WRITER: "it may send fields its tolerant reader ignored"}
            )
        )
    else:
        changes.append(Change(where, "readers now ignore unknown fields"))


def _strict(schema: dict[str, Any]) -> bool:
    """Does a reader of this object refuse fields it does not know?"""
    return schema.get("additionalProperties") is False


def _compare_properties(old: dict[str, Any], new: dict[str, Any], path: str, changes: list[Change]) -> None:
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    for name, old_prop in old_props.items():
        child = f"{path}.{name}" if path else name
        if name not in new_props:
            breaks = {}
            if name in old_required:
                breaks[Side.OLD_READER] = "it requires the field"
            if _strict(new):
                breaks[Side.OLD_WRITER] = "it still sends the field, and the new reader refuses unknown fields"
            changes.append(Change(child, "field removed", breaks))
            continue
        if name in new_required and name not in old_required:
            changes.append(Change(child, "field became required", {Side.OLD_WRITER: "it may leave the field out"}))
        elif name in old_required and name not in new_required:
            changes.append(Change(child, "field became optional", {Side.OLD_READER: "it requires the field"}))
        _compare(old_prop, new_props[name], child, changes)
    for name in new_props.keys() - old_props.keys():
        child = f"{path}.{name}" if path else name
        breaks = {}
        if _strict(old):
            breaks[Side.OLD_READER] = "it refuses unknown fields"
        if name in new_required:
            breaks[Side.OLD_WRITER] = "it does not send the field"
        kind = "required" if name in new_required else "optional"
        changes.append(Change(child, f"new {kind} field", breaks))


def _compare_variants(old: dict[str, Any], new: dict[str, Any], path: str, changes: list[Change]) -> None:
    old_variants = _variants(old)
    new_variants = _variants(new)
    where = path or "(root)"
    for label, variant in old_variants.items():
        if label not in new_variants:
            changes.append(Change(where, f"variant {label} removed", {Side.OLD_WRITER: "it still sends it"}))
        else:
            _compare(variant, new_variants[label], f"{path}<{label}>" if label != "value" else path, changes)
    for label in sorted(new_variants.keys() - old_variants.keys()):
        changes.append(
            Change(where, f"variant {label} added", {Side.OLD_READER: "it refuses variants it does not know"})
        )


def _variants(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Non-null anyOf/oneOf variants, labelled by their discriminator const or position."""
    labelled: dict[str, dict[str, Any]] = {}
    options = [v for v in schema.get("anyOf") or schema.get("oneOf") or [] if v.get("type") != "null"]
    for index, variant in enumerate(options):
        consts = [p["const"] for p in variant.get("properties", {}).values() if "const" in p]
        label = str(consts[0]) if consts else ("value" if len(options) == 1 else str(index))
        labelled[label] = variant
    return labelled
