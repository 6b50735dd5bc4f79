"""The ops commands when the broker or a service is away (a real port where nothing listens), and
the CLI without its optional local stack: one line saying what is wrong, a non-zero exit, no traceback."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lotse_cli.main import app
from lotse_devstack.processes import free_port

REPO = Path(__file__).resolve().parents[2]
LOTSE = Path(sys.executable).parent / "lotse"
runner = CliRunner()


@pytest.fixture
def nowhere() -> str:
    """host:port of a loopback port nothing listens on."""
    return f"127.0.0.1:{free_port()}"


def one_line_failure(args: list[str], env: dict[str, str] | None = None) -> str:
    result = runner.invoke(app, args, env=env)
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # a message, not an exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize(
    "command",
    [["topics", "sync"], ["dlq", "list"], ["dlq", "show", "x.v1.dlq"], ["dlq", "replay", "x.v1.dlq"]],
    ids=" ".join,
)
def test_broker_commands_say_in_one_line_that_the_broker_is_away(command: list[str], nowhere: str) -> None:
    line = one_line_failure([*command, "--bootstrap", nowhere])
    assert line.startswith(f"{command[0]} {command[1]}: broker {nowhere} not reachable: KafkaConnectionError: Unable")


def test_the_bootstrap_servers_come_from_the_environment_through_the_option(nowhere: str) -> None:
    line = one_line_failure(["dlq", "list"], env={"LOTSE_KAFKA_BOOTSTRAP": nowhere})
    assert f"broker {nowhere} not reachable" in line
    help_text = runner.invoke(app, ["dlq", "list", "--help"], terminal_width=200).output
    assert "LOTSE_KAFKA_BOOTSTRAP" in help_text


@pytest.mark.parametrize(
    "command",
    [
        ["tenant", "onboard", "teststadt", "--name", "Stadt Teststadt", "--municipality-key", "05999123",
         "--coordination-email", "ehrenamt@teststadt.example", "--no-manifests"],
        ["partner", "rotate", "teststadt"],
    ],
    ids=lambda command: " ".join(command[:2]),
)  # fmt: skip
def test_registry_commands_say_in_one_line_that_the_registry_is_away(command: list[str], nowhere: str) -> None:
    line = one_line_failure([*command, "--registry", f"http://{nowhere}", "--token", "t", "--bootstrap", nowhere])
    assert line.startswith(f"{command[0]} {command[1]}: registry at http://{nowhere}/tenants/teststadt unreachable")


def test_health_names_each_service_and_the_broker_that_are_away(nowhere: str) -> None:
    urls = {name: f"http://127.0.0.1:{free_port()}" for name in ("registry", "matching", "notifications")}
    result = runner.invoke(app, ["health", "--bootstrap", nowhere, *(f"--{n}={u}" for n, u in urls.items())])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    lines = result.output.strip().splitlines()
    for name, url in urls.items():
        assert any(line.startswith(name) and "unreachable" in line and url in line for line in lines), result.output
    assert lines[-1].startswith(f"kafka          unreachable at {nowhere}: "), result.output
    assert len(lines) == 4, result.output


def test_the_installed_command_writes_one_line_to_stderr(nowhere: str) -> None:
    # The real entry point, so that nothing (aiokafka's own logging included) adds to the message.
    result = subprocess.run(
        [str(LOTSE), "dlq", "list", "--bootstrap", nowhere], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"dlq list: broker {nowhere} not reachable")


def test_version_is_the_package_version() -> None:
    declared = tomllib.loads((REPO / "cli" / "pyproject.toml").read_text())["project"]["version"]
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"lotse {declared}\n"


WITHOUT_DEVSTACK = """
import sys
sys.modules["lotse_devstack"] = None  # as in the operations image: the extra is not installed
from lotse_cli.main import app
sys.argv = ["lotse", *sys.argv[1:]]
app()
"""


def without_devstack(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", WITHOUT_DEVSTACK, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_up_without_the_local_stack_says_how_to_install_it() -> None:
    result = without_devstack("up", "--demo")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert "pip install 'lotse-cli[devstack]'" in result.stderr


def test_the_ops_commands_work_without_the_local_stack(nowhere: str) -> None:
    result = without_devstack("dlq", "list", "--bootstrap", nowhere)
    assert result.returncode == 1
    assert result.stderr.startswith(f"dlq list: broker {nowhere} not reachable"), result.stderr
    assert without_devstack("deploy", "--help").returncode == 0
