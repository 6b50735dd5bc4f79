"""A local stand-in for an HTTP SMS gateway, for ``lotse up`` and the tests: it takes SMS the way
notifications sends them to a real gateway and keeps them instead of sending them.

    python -m lotse_devstack.sms_sink --port 8026     # token: LOTSE_SMS_GATEWAY_TOKEN, if set

The gateway API, as notifications' ``SmsChannel`` speaks it: ``POST /messages`` with a JSON body
``{"to": "+49...", "text": "...", "sender": "Lotse", "reference": "<delivery id>"}`` and
``Authorization: Bearer <token>``; 202 with the message's id when taken, 401 for a wrong token,
400 for a body that is not such a message or a number the sink was told to refuse (``refused``: a
number that does not exist). The mailbox side: ``GET /messages`` lists what was taken as JSON
(``?to=`` filters by number), ``DELETE /messages`` clears, ``GET /health``.
"""

from __future__ import annotations

import argparse
import hmac
import itertools
import json
import os
import re
import signal
import threading
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from lotse_devstack.sink_http import SinkRequestHandler

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Sms:
    id: str
    to: str
    text: str
    sender: str
    reference: str


class SmsSink:
    """The gateway on ``port`` (0 picks a free one) on loopback; ``token`` empty accepts any."""

    def __init__(self, port: int = 0, token: str = "") -> None:
        self.token = token
        self.refused: set[str] = set()
        self._port = port
        self._lock = threading.Lock()
        self._messages: list[Sms] = []
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start the sink first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The gateway's send endpoint (what LOTSE_SMS_GATEWAY_URL names)."""
        return f"http://127.0.0.1:{self.port}/messages"

    def messages(self, to: str | None = None) -> list[Sms]:
        with self._lock:
            return [message for message in self._messages if to is None or message.to == to]

    def take(self, to: str, text: str, sender: str, reference: str) -> Sms:
        with self._lock:
            message = Sms(f"{next(self._ids):06d}", to, text, sender, reference)
            self._messages.append(message)
            return message

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def start(self) -> SmsSink:
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="sms-sink", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SmsSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(sink: SmsSink) -> type[BaseHTTPRequestHandler]:
    class Handler(SinkRequestHandler):
        def do_POST(self) -> None:
            if urlparse(self.path).path.rstrip("/") != "/messages":
                self._json(404, {"title": "Not found"})
                return
            given = self.headers.get("Authorization", "")
            if sink.token and not hmac.compare_digest(given.encode(), f"Bearer {sink.token}".encode()):
                self._json(401, {"title": "Unauthorized"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._json(413, {"title": "Too large"})
                return
            try:
                body = json.loads(self.rfile.read(length) or b"null")
                to, text = body["to"], body["text"]
                sender, reference = str(body.get("sender", "")), str(body.get("reference", ""))
            except (ValueError, TypeError, KeyError):
                self._json(400, {"title": "Bad request", "detail": "to and text are required"})
                return
            if not isinstance(to, str) or not E164.fullmatch(to) or not isinstance(text, str) or not text:
                self._json(400, {"title": "Bad request", "detail": "to must be an E.164 number, text not empty"})
                return
            if to in sink.refused:
                self._json(400, {"title": "Bad request", "detail": "no such number"})
                return
            taken = sink.take(to, text, sender, reference)
            self._json(202, {"id": taken.id})

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path.rstrip("/") == "/messages":
                wanted = parse_qs(url.query).get("to", [None])[0]
                self._json(200, [asdict(message) for message in sink.messages(wanted)])
            elif url.path == "/health":
                self._json(200, {"status": "ok"})
            else:
                self._json(404, {"title": "Not found"})

        def clear_messages(self) -> None:
            sink.clear()

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lotse_devstack.sms_sink", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8026)
    args = parser.parse_args(argv)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    # The same variable as notifications' setting: one value for both, never on the command line.
    with SmsSink(args.port, os.environ.get("LOTSE_SMS_GATEWAY_TOKEN", "")) as sink:
        print(f"sms sink: {sink.url}", flush=True)
        stopped.wait()


if __name__ == "__main__":
    main()
