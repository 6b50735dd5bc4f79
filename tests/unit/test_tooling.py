"""The pre-commit hooks run the checks of `make lint` with the workspace's own tools, offline."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _hooks() -> dict[str, dict[str, Any]]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"], "hooks from elsewhere need the network"
    return {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}


def _lint_commands() -> list[str]:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None, "the Makefile has a lint target"
    return [line.strip().removeprefix("$(UV) ") for line in recipe.group(1).splitlines()]


def test_ruff_mypy_and_the_contract_check_run_before_each_commit_as_in_make_lint() -> None:
    hooks = _hooks()
    entries = {hook_id: hook["entry"] for hook_id, hook in hooks.items()}
    assert entries == {
        "ruff-check": "uv run ruff check --force-exclude",
        "ruff-format": "uv run ruff format --force-exclude",
        "mypy": "uv run mypy",
        "contracts-check": "uv run lotse contracts check",
    }
    lint = _lint_commands()
    for command in ("run ruff check .", "run ruff format --check .", "run mypy", "run lotse contracts check"):
        assert command in lint, f"make lint lacks {command!r}"
    # mypy checks what pyproject.toml lists, whichever files a commit touches.
    assert hooks["mypy"]["pass_filenames"] is False and hooks["contracts-check"]["pass_filenames"] is False


def test_the_hook_tools_come_from_the_dev_group() -> None:
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    names = {re.split(r"[<>=\[ ]", requirement, maxsplit=1)[0] for requirement in dev}
    assert {"ruff", "mypy", "pre-commit"} <= names
