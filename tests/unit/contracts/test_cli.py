"""`lotse contracts export` and `check` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from lotse_cli.contracts_commands import contracts_app
from lotse_contracts import EVENT_TYPES

runner = CliRunner()


def test_export_writes_one_schema_per_event_and_asyncapi(tmp_path: Path) -> None:
    result = runner.invoke(contracts_app, ["export", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert {path.name for path in tmp_path.iterdir()} == {f"{t}.json" for t in EVENT_TYPES} | {"asyncapi.yaml"}


def test_check_passes_on_fresh_snapshots_and_fails_on_a_breaking_change(tmp_path: Path) -> None:
    assert runner.invoke(contracts_app, ["check", "--update", "--snapshots", str(tmp_path)]).exit_code == 0
    assert runner.invoke(contracts_app, ["check", "--snapshots", str(tmp_path)]).exit_code == 0

    snapshot = tmp_path / "de.lotse.registry.need.opened.v1.json"
    schema = json.loads(snapshot.read_text())
    schema["$defs"]["NeedOpened"]["properties"]["volunteers_needed"]["type"] = "string"
    snapshot.write_text(json.dumps(schema))
    result = runner.invoke(contracts_app, ["check", "--snapshots", str(tmp_path)])

    assert result.exit_code == 1
    assert "de.lotse.registry.need.opened.v1: data.volunteers_needed: type changed string -> integer" in result.output


def test_check_fails_when_a_new_optional_field_would_reach_strict_old_readers(tmp_path: Path) -> None:
    runner.invoke(contracts_app, ["check", "--update", "--snapshots", str(tmp_path)])
    # The snapshot predates the optional field `languages`: the code adds it.
    snapshot = tmp_path / "de.lotse.registry.need.opened.v1.json"
    schema = json.loads(snapshot.read_text())
    del schema["$defs"]["NeedOpened"]["properties"]["languages"]
    snapshot.write_text(json.dumps(schema))

    result = runner.invoke(contracts_app, ["check", "--snapshots", str(tmp_path)])

    assert result.exit_code == 1
    assert (
        "BREAKING: lotse.registry.needs.v1 de.lotse.registry.need.opened.v1: data.languages: new optional field: "
        "breaks old reader (matching, notifications): it refuses unknown fields"
    ) in result.output
    assert "first make the readers tolerant" in result.output


def test_update_refuses_to_rewrite_snapshots_over_a_breaking_change_unless_forced(tmp_path: Path) -> None:
    runner.invoke(contracts_app, ["check", "--update", "--snapshots", str(tmp_path)])
    snapshot = tmp_path / "de.lotse.registry.need.opened.v1.json"
    schema = json.loads(snapshot.read_text())
    del schema["$defs"]["NeedOpened"]["properties"]["languages"]
    snapshot.write_text(json.dumps(schema))

    refused = runner.invoke(contracts_app, ["check", "--update", "--snapshots", str(tmp_path)])

    assert refused.exit_code == 1
    assert "snapshots not rewritten" in refused.output
    assert "languages" not in json.loads(snapshot.read_text())["$defs"]["NeedOpened"]["properties"]

    forced = runner.invoke(contracts_app, ["snapshot", "--force", "--snapshots", str(tmp_path)])

    assert forced.exit_code == 0, forced.output
    assert "languages" in json.loads(snapshot.read_text())["$defs"]["NeedOpened"]["properties"]
