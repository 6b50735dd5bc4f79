"""A real SMTP server for local runs and tests that keeps what it receives and shows it over HTTP.

SMTP (aiosmtpd) and HTTP (the standard library's threading server) each run in a thread of
their own, so the sink works the same inside a test process and as its own process:

    python -m lotse_devstack.smtp_sink --smtp-port 2525 --http-port 8025 [--folder DIR]

HTTP: ``GET /messages`` lists messages as JSON (``?to=`` filters by recipient, ``?after=<id>``
leaves out that message and those before it, ``?detail=1`` answers each as ``/messages/<id>``
does), ``GET /messages/<id>`` shows one message's headers, text and HTML, ``DELETE /messages``
clears. Each message carries ``received_at``: the sink's wall clock (Unix seconds) when the
message's data was accepted, so a benchmark can time an arrival without polling for it.
Messages live in memory, or as ``<id>.eml`` files in a folder when one is given.
"""

from __future__ import annotations

import argparse
import email
import itertools
import json
import signal
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from aiosmtpd.controller import Controller

from lotse_devstack.processes import free_port
from lotse_devstack.sink_http import SinkRequestHandler


@dataclass(frozen=True)
class StoredMessage:
    id: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    received_at: float  # wall clock, Unix seconds

    def parsed(self) -> EmailMessage:
        message = email.message_from_bytes(self.raw, policy=default_policy)
        assert isinstance(message, EmailMessage)
        return message

    def summary(self) -> dict[str, Any]:
        message = self.parsed()
        return {
            "id": self.id,
            "from": self.mail_from,
            "to": list(self.rcpt_tos),
            "subject": str(message.get("Subject", "")),
            "message_id": str(message.get("Message-ID", "")),
            "date": str(message.get("Date", "")),
            "received_at": self.received_at,
        }

    def detail(self) -> dict[str, Any]:
        message = self.parsed()
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        return {
            **self.summary(),
            "headers": {name: str(value) for name, value in message.items()},
            # SMTP transports lines with CRLF; readers want the text as it was written.
            "text": text.get_content().replace("\r\n", "\n") if text is not None else None,
            "html": html.get_content().replace("\r\n", "\n") if html is not None else None,
            # What is attached (a calendar entry, say): its name, type and, for text, the text.
            "attachments": [
                {
                    "filename": part.get_filename(),
                    "content_type": part.get_content_type(),
                    "text": part.get_content().replace("\r\n", "\n") if part.get_content_maintype() == "text" else None,
                }
                for part in message.iter_attachments()
            ],
        }


class MessageStore:
    """Received messages, in memory or in a folder; safe to use from several threads."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._messages: list[StoredMessage] = []
        self._ids = itertools.count(1)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def add(self, mail_from: str, rcpt_tos: list[str], raw: bytes, received_at: float) -> StoredMessage:
        with self._lock:
            stored = StoredMessage(f"{next(self._ids):06d}", mail_from, tuple(rcpt_tos), raw, received_at)
            if self.folder is not None:
                envelope = {"from": mail_from, "to": rcpt_tos, "received_at": received_at}
                (self.folder / f"{stored.id}.json").write_text(json.dumps(envelope))
                (self.folder / f"{stored.id}.eml").write_bytes(raw)
            else:
                self._messages.append(stored)
            return stored

    def all(self) -> list[StoredMessage]:
        with self._lock:
            if self.folder is None:
                return list(self._messages)
            found = []
            for path in sorted(self.folder.glob("*.eml")):
                envelope = json.loads(path.with_suffix(".json").read_text())
                received_at = float(envelope.get("received_at", path.stat().st_mtime))
                found.append(
                    StoredMessage(path.stem, envelope["from"], tuple(envelope["to"]), path.read_bytes(), received_at)
                )
            return found

    def get(self, message_id: str) -> StoredMessage | None:
        return next((message for message in self.all() if message.id == message_id), None)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            if self.folder is not None:
                for path in [*self.folder.glob("*.eml"), *self.folder.glob("*.json")]:
                    path.unlink(missing_ok=True)


class _SmtpHandler:
    def __init__(self, store: MessageStore) -> None:
        self.store = store

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        received_at = time.time()  # first, before the store's lock and any file writes
        raw = bytes(envelope.original_content or b"")
        self.store.add(envelope.mail_from, list(envelope.rcpt_tos), raw, received_at)
        return "250 Message accepted for delivery"


def _http_handler(store: MessageStore) -> type[BaseHTTPRequestHandler]:
    class Handler(SinkRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            parts = [part for part in url.path.split("/") if part]
            if parts == ["messages"]:
                query = parse_qs(url.query)
                wanted = query.get("to", [None])[0]
                after = query.get("after", [""])[0]  # ids are zero-padded, so they sort as they came
                detailed = query.get("detail", ["0"])[0] in ("1", "true")
                listed = [
                    message.detail() if detailed else message.summary()
                    for message in store.all()
                    if (wanted is None or wanted in message.rcpt_tos) and message.id > after
                ]
                self._json(200, listed)
            elif len(parts) == 2 and parts[0] == "messages" and (found := store.get(parts[1])) is not None:
                self._json(200, found.detail())
            elif parts == ["health"]:
                self._json(200, {"status": "ok"})
            else:
                self._json(404, {"title": "Not found"})

        def clear_messages(self) -> None:
            store.clear()

    return Handler


class SmtpSink:
    """SMTP on ``smtp_port`` and HTTP on ``http_port`` (0 picks a free port), both on loopback."""

    def __init__(self, smtp_port: int = 0, http_port: int = 0, folder: Path | None = None) -> None:
        self.store = MessageStore(folder)
        self._smtp_port = smtp_port
        self._http_port = http_port
        self._controller: Controller | None = None
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    @property
    def smtp_port(self) -> int:
        assert self._controller is not None, "start the sink first"
        return int(self._controller.port)

    @property
    def http_port(self) -> int:
        assert self._http is not None, "start the sink first"
        return int(self._http.server_address[1])

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> SmtpSink:
        # aiosmtpd checks readiness by connecting to the port it was given, so 0 cannot be passed on.
        port = self._smtp_port or free_port()
        controller = Controller(_SmtpHandler(self.store), hostname="127.0.0.1", port=port)
        controller.start()
        self._controller = controller
        self._http = ThreadingHTTPServer(("127.0.0.1", self._http_port), _http_handler(self.store))
        self._http.daemon_threads = True
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="smtp-sink-http", daemon=True)
        self._http_thread.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lotse_devstack.smtp_sink", description=__doc__.split("\n")[0])
    parser.add_argument("--smtp-port", type=int, default=2525)
    parser.add_argument("--http-port", type=int, default=8025)
    parser.add_argument("--folder", type=Path, default=None, help="keep messages as .eml files here")
    args = parser.parse_args(argv)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    with SmtpSink(args.smtp_port, args.http_port, args.folder) as sink:
        print(f"smtp sink: smtp 127.0.0.1:{sink.smtp_port}, http {sink.http_url}/messages", flush=True)
        stopped.wait()


if __name__ == "__main__":
    main()
