"""`lotse contracts …`: export the published contract artefacts, check compatibility."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import lotse_contracts
from lotse_contracts.compatibility import check_against_snapshots, write_snapshots
from lotse_contracts.export import export as export_artefacts

SNAPSHOTS = Path("contracts") / "schemas"

contracts_app = typer.Typer(help="Export and check the event contracts.", no_args_is_help=True)

SnapshotsOption = Annotated[
    Path | None,
    typer.Option("--snapshots", help="Folder of committed schema snapshots (default: contracts/schemas of the repo)."),
]


@contracts_app.command()
def export(
    directory: Annotated[Path, typer.Argument(help="Folder to write the schemas and asyncapi.yaml to.")],
) -> None:
    """Write one JSON Schema per event type and asyncapi.yaml."""
    written = export_artefacts(directory)
    typer.echo(f"wrote {len(written)} files to {directory}")


ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Rewrite the snapshots even over breaking changes (a deliberate break, e.g. a retired type).",
    ),
]


@contracts_app.command()
def check(
    snapshots: SnapshotsOption = None,
    update: Annotated[
        bool, typer.Option("--update", help="Then rewrite the snapshots from the code, if nothing breaks.")
    ] = False,
    force: ForceOption = False,
) -> None:
    """Fail if a change to an event schema would break an old reader or an old writer of its topic."""
    folder = snapshots or _find_snapshots()
    result = check_against_snapshots(folder)
    for line in result.new_types:
        typer.echo(f"new event type (no snapshot yet; its readers must be deployed before a writer sends it): {line}")
    for line in result.compatible:
        typer.echo(f"compatible: {line}")
    for line in result.breaking:
        typer.echo(f"BREAKING: {line}", err=True)
    if not result.ok and not (update and force):
        typer.echo(
            f"{len(result.breaking)} breaking change(s): publish a new .v2 event type, or first make the readers "
            "tolerant (README, 'Changing a contract').",
            err=True,
        )
        if update:
            # Rewriting the snapshots over a break would hide it from every later check.
            typer.echo("snapshots not rewritten; --force rewrites them anyway", err=True)
        raise typer.Exit(1)
    if update:
        _write(folder)
        return
    typer.echo(f"contracts compatible with the snapshots in {folder}")


@contracts_app.command()
def snapshot(snapshots: SnapshotsOption = None, force: ForceOption = False) -> None:
    """Rewrite the snapshots from the code, if nothing breaks (same as `check --update`)."""
    check(snapshots, update=True, force=force)


def _write(folder: Path) -> None:
    written = write_snapshots(folder)
    typer.echo(f"wrote {len(written)} snapshots to {folder}")


def _find_snapshots() -> Path:
    """contracts/schemas of the repository around the working directory, else beside the package source."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "contracts" / "pyproject.toml").is_file():
            return folder / SNAPSHOTS
    # An editable install: <repo>/contracts/src/lotse_contracts/__init__.py
    beside_source = Path(lotse_contracts.__file__).resolve().parents[2] / "schemas"
    if beside_source.parent.joinpath("pyproject.toml").is_file():
        return beside_source
    typer.echo("cannot find contracts/schemas; run inside the repository or pass --snapshots", err=True)
    raise typer.Exit(2)
