# ruff: noqa: RUF001 - non-ASCII subjects on purpose
"""The devstack SMTP sink: a real SMTP server that keeps what it receives and shows it over HTTP."""

from __future__ import annotations

import asyncio
import smtplib
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from subprocess import DEVNULL

import httpx

from lotse_devstack.processes import free_port, port_answers
from lotse_devstack.smtp_sink import SmtpSink
from tests.support.waiting import eventually


def _send(port: int, to: str, subject: str, calendar: str | None = None) -> None:
    message = EmailMessage()
    message["From"] = "lotse@example.org"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Hallo\n")
    message.add_alternative('<p dir="rtl">مرحباً</p>', subtype="html")
    if calendar is not None:
        message.add_attachment(calendar, subtype="calendar", filename="einsatz.ics")
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.send_message(message)


def test_received_messages_are_listed_shown_filtered_and_cleared_over_http(tmp_path: Path) -> None:
    for folder in (None, tmp_path / "mails"):
        with SmtpSink(folder=folder) as sink:
            _send(sink.smtp_port, "a@example.org", "Erste")
            _send(
                sink.smtp_port, "b@example.org", "Zweite Nachricht – ü", calendar="BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
            )
            with httpx.Client(base_url=sink.http_url) as http:
                listed = http.get("/messages").json()
                assert [item["subject"] for item in listed] == ["Erste", "Zweite Nachricht – ü"]
                (only_b,) = http.get("/messages", params={"to": "b@example.org"}).json()
                detail = http.get(f"/messages/{only_b['id']}").json()
                assert detail["to"] == ["b@example.org"] and detail["text"] == "Hallo\n"
                assert detail["html"].strip() == '<p dir="rtl">مرحباً</p>'
                # What is attached is named with its type, and text attachments are shown.
                assert detail["attachments"] == [
                    {
                        "filename": "einsatz.ics",
                        "content_type": "text/calendar",
                        "text": "BEGIN:VCALENDAR\nEND:VCALENDAR\n",
                    }
                ]
                (only_a,) = http.get("/messages", params={"to": "a@example.org"}).json()
                assert http.get(f"/messages/{only_a['id']}").json()["attachments"] == []
                assert http.get("/messages/nope").status_code == 404
                http.delete("/messages")
                assert http.get("/messages").json() == []
        if folder is not None:
            assert list(folder.glob("*.eml")) == []


def test_each_message_carries_the_sinks_receive_time_and_the_list_starts_after_a_given_id(tmp_path: Path) -> None:
    for folder in (None, tmp_path / "mails"):
        with SmtpSink(folder=folder) as sink:
            before = time.time()
            _send(sink.smtp_port, "a@example.org", "Erste")
            between = time.time()
            _send(sink.smtp_port, "b@example.org", "Zweite")
            after = time.time()
            with httpx.Client(base_url=sink.http_url) as http:
                first, second = http.get("/messages").json()
                # Stamped by the sink when it accepted the data, on the same wall clock as the sender's.
                assert before <= first["received_at"] <= between <= second["received_at"] <= after
                assert http.get(f"/messages/{first['id']}").json()["received_at"] == first["received_at"]
                (newer,) = http.get("/messages", params={"after": first["id"], "detail": "1"}).json()
                assert newer["id"] == second["id"] and newer["text"] == "Hallo\n"
                assert http.get("/messages", params={"after": second["id"]}).json() == []


async def test_the_sink_runs_as_its_own_process_with_the_given_ports() -> None:
    smtp_port, http_port = free_port(), free_port()
    ports = ["--smtp-port", str(smtp_port), "--http-port", str(http_port)]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lotse_devstack.smtp_sink", *ports, stdout=DEVNULL, stderr=DEVNULL
    )
    try:

        async def answering() -> bool:
            return port_answers(smtp_port) and port_answers(http_port)

        await eventually(answering, timeout=20, what="the sink to answer")
        _send(smtp_port, "c@example.org", "Prozess")
        async with httpx.AsyncClient() as http:
            listed = (await http.get(f"http://127.0.0.1:{http_port}/messages")).json()
        assert [item["subject"] for item in listed] == ["Prozess"]
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)
