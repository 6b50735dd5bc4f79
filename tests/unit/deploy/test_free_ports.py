"""``free_port`` never hands out a port twice within its reservation time, in this process or in
another (parallel test workers choose among the same ports below the ephemeral range)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lotse_devstack import processes
from lotse_devstack.processes import free_port


def test_three_hundred_ports_in_a_row_are_all_different() -> None:
    # Drawn at random from 10,000 ports, 300 would share one ~4 times on average without reservations.
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)


def test_a_port_another_process_handed_out_is_not_handed_out_again() -> None:
    script = "from lotse_devstack.processes import free_port; print(*(free_port() for _ in range(150)))"
    theirs = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    ours = {free_port() for _ in range(150)}
    assert ours.isdisjoint(int(port) for port in theirs.stdout.split())
    assert all((processes.PORT_RESERVATIONS / str(port)).exists() for port in ours)


def test_where_no_reservation_can_be_written_a_free_port_is_still_handed_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(processes, "PORT_RESERVATIONS", blocker / "lotse-ports")  # below a file: no folder
    port = free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
