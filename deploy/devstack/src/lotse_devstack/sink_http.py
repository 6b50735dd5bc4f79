"""What the development sinks' HTTP readers share: JSON answers, ``DELETE /messages`` and quiet logs."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlparse


class SinkRequestHandler(BaseHTTPRequestHandler):
    def clear_messages(self) -> None:
        raise NotImplementedError

    def do_DELETE(self) -> None:
        if urlparse(self.path).path.rstrip("/") == "/messages":
            self.clear_messages()
            self._json(200, {"cleared": True})
        else:
            self._json(404, {"title": "Not found"})

    def _json(self, status: int, body: Any) -> None:
        payload = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output and the dev console quiet
