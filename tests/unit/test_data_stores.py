"""The store catalogue (`lotse_contracts.data_stores`) declares every collection the services use.

The services' code is read, not run: a collection is used where a database object is indexed by
a name (`database["needs"]`, `database[NEEDS]`) or an attribute of it is taken (`self.db.needs`).
"""

from __future__ import annotations

import ast
import functools
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from lotse_contracts.data_stores import STORES, StoreOwner, collections_of
from lotse_contracts.personal_data import RetentionRule
from lotse_runtime.retention import RetentionRule as RetentionJobRule

DATABASE_NAMES = {"db", "database", "_db"}


def _name_of(node: ast.AST, module: ModuleType) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        value = getattr(module, node.id, None)
        return value if isinstance(value, str) else None
    return None


def _is_database(node: ast.AST) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name in DATABASE_NAMES


@functools.cache
def collections_used(package_name: str) -> frozenset[str]:
    """The collection names a package's modules use on a database object."""
    package = importlib.import_module(package_name)
    used: set[str] = set()
    for info in pkgutil.walk_packages(package.__path__, f"{package_name}."):
        module = importlib.import_module(info.name)
        assert module.__file__ is not None
        for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
            if isinstance(node, ast.Subscript) and _is_database(node.value):
                name = _name_of(node.slice, module)
            elif (
                isinstance(node, ast.Attribute)
                and _is_database(node.value)
                and not node.attr.startswith("_")
                and not hasattr(AsyncDatabase, node.attr)
            ):
                name = node.attr
            else:
                continue
            if name:
                used.add(name)
    return frozenset(used)


@pytest.mark.parametrize("owner", list(StoreOwner))
def test_every_collection_a_service_uses_is_declared(owner: StoreOwner) -> None:
    declared = {collection.name for collection in collections_of(owner)}

    assert collections_used(f"lotse_{owner.value}") - declared == set(), (
        f"declare these collections of {owner.value} in lotse_contracts.data_stores.STORES"
    )


def test_every_collection_the_runtime_keeps_in_a_service_database_is_declared() -> None:
    declared = {collection.name for collection in STORES}

    assert collections_used("lotse_runtime") - declared == set()


def test_the_scan_finds_collections_by_literal_by_constant_and_by_attribute() -> None:
    registry, notifications = collections_used("lotse_registry"), collections_used("lotse_notifications")

    assert {"volunteers", "consents"} <= registry  # database[VOLUNTEERS] via the module's constant
    assert {"contacts", "deliveries"} <= notifications  # self.db.contacts


def test_a_collection_with_personal_data_names_its_retention_and_removal() -> None:
    for collection in STORES:
        label = f"{collection.owner.value}.{collection.name}"
        if collection.personal:
            assert collection.retention is not None, label
            assert collection.removal != "nothing personal to remove", label


def test_each_collection_is_declared_once_per_service() -> None:
    names = [(collection.owner, collection.name) for collection in STORES]

    assert len(names) == len(set(names))


@pytest.mark.parametrize("owner", [StoreOwner.REGISTRY, StoreOwner.MATCHING, StoreOwner.NOTIFICATIONS])
def test_each_retention_job_rule_is_the_declared_rule_of_its_collection(owner: StoreOwner) -> None:
    rules = importlib.import_module(f"lotse_{owner.value}.retention").RULES
    declared = {collection.name: collection.retention for collection in collections_of(owner)}

    for rule in rules:
        assert isinstance(rule, RetentionJobRule)
        expected = RetentionRule(rule.period.value.removesuffix("_days"))
        assert declared.get(rule.collection) == expected, f"{owner.value}.{rule.collection}: {rule.name}"


# Enforced otherwise: by the volunteer's erasure (the registry's job starts it for the withdrawn;
# matching and notifications erase on its event), by time-to-live indexes and code of their own.
NOT_BY_A_JOB = {
    RetentionRule.WITHDRAWN_VOLUNTEERS,
    RetentionRule.SHORT_LIVED,
    RetentionRule.SESSION_EXPIRY,
    RetentionRule.TENANT_LIFETIME,
    RetentionRule.AUDIT_TRAIL,
    RetentionRule.NO_RULE_YET,
}


@pytest.mark.parametrize("owner", [StoreOwner.REGISTRY, StoreOwner.MATCHING, StoreOwner.NOTIFICATIONS])
def test_each_declared_period_has_a_job_rule_that_applies_it(owner: StoreOwner) -> None:
    rules: tuple[RetentionJobRule, ...] = importlib.import_module(f"lotse_{owner.value}.retention").RULES
    applied = {
        (collection, rule.period.value.removesuffix("_days"))
        for rule in rules
        for collection in (rule.collection, *rule.also)
    }

    for collection in collections_of(owner):
        if collection.retention is None or collection.retention in NOT_BY_A_JOB:
            continue
        assert (collection.name, collection.retention.value) in applied, (
            f"{owner.value}.{collection.name} declares {collection.retention.value}: give its retention job a rule, "
            "or declare what is done (no_rule_yet where nothing is)"
        )
