"""Stop and start again at once (issue 13, item 8): right after `lotse up` stopped, the ports of its
servers are free again, although the connections those servers closed sit in TIME_WAIT; a port a
server still listens on is taken. Real processes and sockets.

The whole `lotse up` is not restarted here: it takes the three services with it (a minute on a
busy machine) and adds nothing to what fails, which is the port check that `lotse up` and the
local stack share (``port_is_free``), tried here against the SMTP sink, the server the finding
was about.
"""

from __future__ import annotations

import smtplib
import socket
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage

import httpx
import pytest

from lotse_cli.supervisor import Ports, _claim_ports
from lotse_devstack import StackError
from lotse_devstack.processes import free_port, port_answers, port_is_free
from tests.support.waiting import eventually

START_SECONDS = 20.0


def _sink(smtp_port: int, http_port: int) -> subprocess.Popen[bytes]:
    ports = ["--smtp-port", str(smtp_port), "--http-port", str(http_port)]
    return subprocess.Popen(
        [sys.executable, "-m", "lotse_devstack.smtp_sink", *ports],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _answering(*ports: int) -> None:
    async def all_answer() -> bool:
        return all(port_answers(port) for port in ports)

    await eventually(all_answer, timeout=START_SECONDS, what=f"ports {ports} to answer")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=10)


def _mail(port: int, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "lotse@example.org"
    message["To"] = "maria@example.org"
    message["Subject"] = subject
    message.set_content("Hallo\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.send_message(message)


@pytest.fixture
def sinks() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            _stop(process)


async def test_the_smtp_sink_starts_again_on_its_ports_right_after_it_stopped_having_sent_mail(
    sinks: list[subprocess.Popen[bytes]],
) -> None:
    smtp_port, http_port = free_port(), free_port()
    sinks.append(_sink(smtp_port, http_port))
    await _answering(smtp_port, http_port)
    _mail(smtp_port, "Vorschlag")
    async with httpx.AsyncClient() as http:
        listed = (await http.get(f"http://127.0.0.1:{http_port}/messages")).json()
        assert [item["subject"] for item in listed] == ["Vorschlag"]
        # Stopped while the client still holds its keep-alive connection, as a browser would: the
        # sink closes it, which leaves the port in TIME_WAIT whatever the SMTP client did first.
        _stop(sinks[0])

    assert port_is_free(smtp_port) and port_is_free(http_port)
    _claim_ports(_ports(smtp_port, http_port))  # what `lotse up` checks first; it raised here
    sinks.append(_sink(smtp_port, http_port))
    await _answering(smtp_port, http_port)
    _mail(smtp_port, "Nach dem Neustart")
    with pytest.raises(StackError, match=f"smtp sink: port {smtp_port} "):
        _claim_ports(_ports(smtp_port, http_port))


def _ports(smtp_port: int, http_port: int) -> Ports:
    others = {name: free_port() for name in ("kafka", "mongo", "sms", "registry", "matching", "notifications", "idp")}
    return Ports(smtp=smtp_port, mailbox=http_port, **others)


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0"])
@pytest.mark.parametrize("reuse_address", [True, False], ids=["with SO_REUSEADDR", "without"])
def test_a_port_with_a_live_listener_is_taken(address: str, reuse_address: bool) -> None:
    with socket.socket() as listener:
        if reuse_address:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address, 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_is_free(port)
    assert port_is_free(port)
