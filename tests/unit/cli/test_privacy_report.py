"""`lotse privacy report`: the record of processing and the data map come from the markings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from lotse_cli.main import app
from lotse_cli.privacy_report import (
    PLACEHOLDER,
    README_END,
    README_START,
    PrivacyReport,
    build_report,
    periods_from_records,
    summary_markdown,
    to_markdown,
)
from lotse_contracts.data_stores import STORES
from lotse_contracts.event_types import EVENT_TYPES
from lotse_contracts.personal_data import walk_markings
from lotse_runtime.retention import DEFAULT_RETENTION

# No database: the periods come from the settings of the environment.
runner = CliRunner(env={"LOTSE_MONGO_URL": None})
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
# Nowhere to be reached: the report must not depend on a running registry.
OFFLINE = ["--registry", "http://127.0.0.1:9", "--token", "not-a-token"]


def _report(tmp_path: Path, tenant: str, env: dict[str, str] | None = None) -> PrivacyReport:
    result = runner.invoke(app, ["privacy", "report", "--tenant", tenant, "--out", str(tmp_path), *OFFLINE], env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"record-of-processing-{tenant}.md").read_text().startswith("# Record of processing")
    return PrivacyReport.model_validate_json((tmp_path / f"record-of-processing-{tenant}.json").read_text())


def test_the_report_maps_a_volunteer_email_on_its_topic_and_in_the_databases(tmp_path: Path) -> None:
    report = _report(tmp_path, "musterstadt")

    on_topic = [
        e for e in report.data_map if e.location == "lotse.registry.volunteers.v1" and e.field == "contact.email"
    ]
    assert len(on_topic) == 1
    assert on_topic[0].kept.startswith("14 days") and set(on_topic[0].recipients) == {"matching", "notifications"}
    in_contacts = next(
        e for e in report.data_map if e.location == "notifications.contacts" and e.field == "details.email"
    )
    assert "withdrawn_volunteers: 183 days" in in_contacts.kept
    assert any(e.location == "lotse.partner.musterstadt.inbound.v1" for e in report.data_map)


def test_without_the_registry_the_municipalitys_facts_are_placeholders(tmp_path: Path) -> None:
    report = _report(tmp_path, "musterstadt")

    assert report.controller.name == PLACEHOLDER and not report.controller.from_registry
    assert report.transfers_to_third_countries.startswith("none")


def test_a_tenants_own_retention_period_is_reported_for_that_tenant_only(tmp_path: Path) -> None:
    env = {"LOTSE_RETENTION_TENANTS": json.dumps({"lindenau": {"withdrawn_volunteers_days": 90}})}

    lindenau = _report(tmp_path / "l", "lindenau", env)
    musterstadt = _report(tmp_path / "m", "musterstadt", env)

    def days(report: PrivacyReport) -> int | None:
        return next(p.days for p in report.retention if p.rule == "withdrawn_volunteers")

    assert (days(lindenau), days(musterstadt)) == (90, 183)


def test_every_marked_personal_field_and_stored_field_is_in_the_data_map() -> None:
    report = build_report("musterstadt", {"name": "Stadt Musterstadt"}, DEFAULT_RETENTION, NOW)
    mapped = {(entry.kind, entry.field) for entry in report.data_map}

    marked = {("topic", m.path) for model in EVENT_TYPES.values() for m in walk_markings(model) if m.marking}
    stored = {("database", f.path) for collection in STORES for f in collection.personal}
    assert marked | stored == mapped
    assert report.controller.name == "Stadt Musterstadt"
    assert "| topic | lotse.registry.needs.v1 | description | refugee_household |" in to_markdown(report)


def test_a_tenant_that_is_no_slug_is_refused() -> None:
    result = runner.invoke(app, ["privacy", "report", "--tenant", "Muster Stadt", *OFFLINE])

    assert result.exit_code == 2
    assert "not a tenant slug" in result.output


def test_the_readme_table_is_what_the_code_says() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    start, end = readme.index(README_START), readme.index(README_END) + len(README_END) + 1

    assert readme[start:end] == summary_markdown(DEFAULT_RETENTION), "regenerate it: uv run lotse privacy summary"


def test_the_periods_the_jobs_recorded_are_the_tenants_own_else_the_default_and_the_longest_wins() -> None:
    records = [
        {"period": "delivery_log_days", "default_days": 60, "tenant_days": {"lindenau": 30}},
        {"period": "inbox_days", "default_days": 50, "tenant_days": {}},
        {"period": "inbox_days", "default_days": 70, "tenant_days": {}},
    ]

    lindenau = periods_from_records(records, "lindenau", DEFAULT_RETENTION)
    musterstadt = periods_from_records(records, "musterstadt", DEFAULT_RETENTION)

    assert (lindenau.delivery_log_days, musterstadt.delivery_log_days) == (30, 60)
    assert lindenau.inbox_days == 70
    assert lindenau.closed_needs_days == DEFAULT_RETENTION.closed_needs_days  # not recorded: the fallback
