"""A Photon-compatible geocoder on loopback, a partner system outside the platform (not our broker
or database), for the registry's address search (``LOTSE_GEOCODER_URL``). The registry refuses
geocoders inside the network on purpose; in development (the tests' mode) it allows plain http to
loopback, and only there.

It answers ``answer`` (or ``status``), or for a query that contains a key of ``by_query`` that
key's answer, and counts connections and queries::

    with serving(StandInGeocoder(by_query={"Marktstraße 5": photon([feature(...)])})) as (geocoder, port):
        settings = ...(geocoder_url=f"http://127.0.0.1:{port}/api")
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


def feature(lat: float, lon: float, **properties: str) -> dict[str, Any]:
    """One place of a Photon answer (GeoJSON: longitude first)."""
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": properties}


def photon(features: list[dict[str, Any]]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


NOTHING_FOUND = photon([])


@dataclass
class StandInGeocoder:
    answer: bytes = NOTHING_FOUND
    status: int = 200
    by_query: dict[str, bytes] = field(default_factory=dict)
    queries: list[dict[str, list[str]]] = field(default_factory=list)
    connections: int = 0

    def serve(self) -> ThreadingHTTPServer:
        geocoder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query)
                geocoder.queries.append(query)
                asked = " ".join(query.get("q", []))
                answer = next((body for key, body in geocoder.by_query.items() if key in asked), geocoder.answer)
                self.send_response(geocoder.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def verify_request(self, request: Any, client_address: Any) -> bool:
                geocoder.connections += 1
                return True

        return Server(("127.0.0.1", 0), Handler)


@contextmanager
def serving(geocoder: StandInGeocoder) -> Iterator[tuple[StandInGeocoder, int]]:
    """The geocoder on a free loopback port (yields it and the port) until the block ends."""
    server = geocoder.serve()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield geocoder, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
