"""What `lotse up --demo` prints, in which order, and which log format it asks of the services
(the processes themselves are left out: the e2e tests run them)."""

from __future__ import annotations

import json
import re
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lotse_cli import stack_commands
from lotse_cli.main import app
from lotse_cli.supervisor import Platform, Ports
from lotse_devstack import Stack


class _Demo:
    def __init__(self, platform: Platform, logins: Any, say: Callable[[str], None]) -> None:
        self.say = say

    def run(self) -> list[Any]:
        self.say("Stadt Musterstadt: onboarded")
        return []


class _StopAtOnce:
    """Ctrl-C as soon as `lotse up` waits for it."""

    def set(self) -> None:
        pass

    def wait(self) -> bool:
        return True


def test_lotse_up_runs_the_services_with_console_logs_and_says_where_to_look_before_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: dict[str, Any] = {}

    @contextmanager
    def running_platform(**options: Any) -> Iterator[Platform]:
        asked.update(options)
        stack = Stack("127.0.0.1:9092", "mongodb://127.0.0.1:27017/", "embedded", tmp_path / "logs")
        yield Platform(stack, Ports(), tmp_path)

    monkeypatch.setattr(stack_commands, "running_platform", running_platform)
    monkeypatch.setattr(stack_commands, "Demo", _Demo)
    # For the command's duration: no handlers for Ctrl-C in the test process, and no waiting for it.
    monkeypatch.setattr(threading, "Event", _StopAtOnce)
    monkeypatch.setattr(signal, "signal", lambda *_: None)

    result = CliRunner().invoke(app, ["up", "--demo", "--state-dir", str(tmp_path)])

    assert result.exit_code == 0, result.output
    assert asked["log_format"] == "console"
    output = result.output
    where, demo, portal, logins = (
        output.index("Where to look"),
        output.index("demo          | Stadt Musterstadt: onboarded"),
        output.index("Open the portal: http://127.0.0.1:8000"),
        output.index("Demo logins"),
    )
    assert where < demo < portal < logins
    # Logins, not tokens: a row per demo account with its generated password, kept in a private file.
    accounts = tmp_path / "idp" / "accounts.json"
    assert oct(accounts.stat().st_mode & 0o777) == "0o600"
    admin = next(a for a in json.loads(accounts.read_text())["accounts"] if a["username"] == "admin")
    assert re.search(rf"^  -\s+platform-admin\s+admin\s+{re.escape(admin['password'])}$", output, re.M), output
    assert "musterstadt-coordinator" in output and "musterstadt-case-management" in output
    assert "eyJ" not in output  # no bearer token printed
    assert f"{tmp_path / 'logs' / '<service>.log'}   (this terminal shows only warnings and errors)" in output
