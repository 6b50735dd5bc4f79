"""The local stack starts real servers, creates the catalogue's topics, and leaves nothing behind."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from lotse_contracts import topics_for_tenants
from lotse_devstack import Stack, StackError, ensure_topics, running_stack
from lotse_devstack.processes import port_answers
from lotse_devstack.stack import choose_backend

embedded_only = pytest.mark.skipif(choose_backend() != "embedded", reason="starts and stops its own embedded servers")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone once its status says so.
    try:
        with open(f"/proc/{pid}/status") as status:
            return "zombie" not in status.read()
    except FileNotFoundError:
        return False


async def test_catalogue_topics_are_created_once_with_their_partitions(stack: Stack) -> None:
    catalogue = topics_for_tenants(["testhausen"])

    await ensure_topics(stack.kafka_bootstrap, catalogue)
    created_again = await ensure_topics(stack.kafka_bootstrap, catalogue)

    assert created_again == []
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        described = {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics([t.name for t in catalogue])}
    finally:
        await admin.close()
    assert described == {t.name: t.partitions for t in catalogue}
    assert "lotse.partner.testhausen.inbound.v1" in described


@embedded_only
def test_stopping_the_stack_leaves_no_process_and_no_listener(tmp_path: Path) -> None:
    with running_stack(data_dir=tmp_path / "data", log_dir=tmp_path / "logs") as stack:
        pids = [p.pid for p in stack.processes.values()]
        ports = [int(stack.kafka_bootstrap.rsplit(":", 1)[1]), int(stack.mongo_url.split(":")[2].split("/")[0])]
        assert all(pid and _process_alive(pid) for pid in pids)
        assert all(port_answers(port) for port in ports)

    assert not any(_process_alive(pid) for pid in pids if pid)
    # Nothing listens any more (a bind could still fail while closed connections linger in TIME_WAIT).
    assert not any(port_answers(port) for port in ports)


@embedded_only
def test_a_taken_port_fails_fast_naming_the_server(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        with (
            pytest.raises(StackError, match=rf"mongodb: port {taken} .* already in use"),
            running_stack(mongo_port=taken, log_dir=tmp_path / "logs"),
        ):
            pass


@embedded_only
def test_a_killed_owner_takes_its_servers_with_it(tmp_path: Path) -> None:
    """A test run or `lotse up` that crashes (SIGKILL) must not leave servers running."""
    import signal
    import subprocess
    import sys
    import time

    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from lotse_devstack import running_stack\n"
            "with running_stack() as s:\n"
            "    print(' '.join(str(p.pid) for p in s.processes.values()), flush=True)\n"
            "    time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        pids = [int(pid) for pid in owner.stdout.readline().split()]
        assert len(pids) == 2 and all(_process_alive(pid) for pid in pids)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()

    deadline = time.monotonic() + 15
    while any(_process_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_process_alive(pid) for pid in pids)
