"""The audit trail's pure parts: field names without values or bookkeeping, the CSV export's rows."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lotse_runtime.audit import (
    AuditEntry,
    InvalidAuditCursor,
    Operation,
    changed_fields,
    csv_header,
    csv_line,
    decode_audit_cursor,
    encode_audit_cursor,
)

ENTRY = AuditEntry(
    id="e-1",
    tenant="musterstadt",
    at=datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
    actor='=HYPERLINK("http://evil")',
    roles=("coordinator", "initiative-admin"),
    action="PUT /tenants/{tenant}/volunteers/{volunteer_id}/profile",
    operation=Operation.UPDATE,
    resource_type="volunteers",
    resource_id="v-1",
    fields=("contact", "skills"),
)


def test_changed_fields_are_names_without_values_or_bookkeeping() -> None:
    document = {"_id": "v-1", "tenant": "t", "version": 2, "contact": {"email": "a@b.de"}, "skills": ["x"]}
    assert changed_fields(document) == {"contact", "skills"}
    update = {"$set": {"home_area": {"postcode": "10115"}, "updated_at": 1, "version": 3}, "$unset": {"phone": ""}}
    assert changed_fields(update) == {"home_area", "phone"}
    assert changed_fields({"$pull": {"committed": "v-1"}}) == {"committed"}


def test_a_csv_row_per_entry_with_a_formula_defused() -> None:
    rows = list(csv.reader(io.StringIO(csv_header() + csv_line(ENTRY))))
    assert rows[0][:3] == ["at", "tenant", "actor"]
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["actor"].startswith("'=")  # a spreadsheet shows it, never runs it
    assert row["roles"] == "coordinator initiative-admin" and row["fields"] == "contact skills"
    assert row["operation"] == "update" and row["resource_id"] == "v-1"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_start_is_defused(start: str) -> None:
    entry = ENTRY.model_copy(update={"action": start + "cmd|' /C calc'!A0"})
    rows = list(csv.reader(io.StringIO(csv_header() + csv_line(entry))))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["action"] == "'" + start + "cmd|' /C calc'!A0"


def test_the_subject_is_a_column_of_its_own() -> None:
    entry = ENTRY.model_copy(update={"resource_type": "consents", "resource_id": "c-1", "subject_id": "v-1"})
    rows = list(csv.reader(io.StringIO(csv_header() + csv_line(entry))))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["subject_id"] == "v-1" and row["resource_id"] == "c-1"


def test_a_cursor_round_trips_and_a_foreign_one_is_refused() -> None:
    assert decode_audit_cursor(encode_audit_cursor(ENTRY)) == (ENTRY.at, "e-1")
    with pytest.raises(InvalidAuditCursor):
        decode_audit_cursor("not-a-cursor")


def test_no_code_changes_or_deletes_an_entry_only_the_retention_index_removes_them() -> None:
    """Append-only: the services and the runtime only insert into the audit collection and read it."""
    root = Path(__file__).resolve().parents[3]
    names = r"(?:AUDIT_COLLECTION|AUDIT_TRAIL|\"audit\"|'audit')"
    changes = re.compile(
        names
        + r"\]\s*\.\s*(update|replace|delete|find_one_and|drop|bulk_write|rename)|\.audit\.(update|replace|delete)"
    )
    found = [
        f"{path.relative_to(root)}:{match.group(0)}"
        for top in ("runtime", "services", "cli")
        for path in (root / top).rglob("*.py")
        for match in changes.finditer(path.read_text(encoding="utf-8"))
    ]
    assert found == []
    # The guard finds what it guards against.
    assert changes.search('await database[AUDIT_COLLECTION].delete_many({"tenant": t})')
