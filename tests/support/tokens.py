"""A token issuer for the tests that are not about sign-in.

An RSA key whose public half is served as a key set (JWKS) over real HTTP on a free loopback
port, so that services verify the tests' tokens through ``PyJWKClient`` exactly as they verify a
provider's in production; only the sign-in itself (a login page, a code flow) is left out. The
tests about sign-in use the real local OpenID provider instead (tests/support/idp.py).

``tests/conftest.py`` points ``LOTSE_JWT_ISSUER`` and ``LOTSE_JWT_JWKS_URL`` at the shared issuer
of the test process before any settings are built, so service processes that the tests start
inherit it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from lotse_runtime.auth import AuthConfig, Role

AUDIENCE = "lotse"
JWKS_PATH = "/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"


class TokenIssuer:
    """One issuer: its key, its HTTP endpoint and the tokens it signs. Started on creation."""

    def __init__(self, audience: str = AUDIENCE) -> None:
        self.audience = audience
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = f"test-{id(self):x}"
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        self._documents: dict[str, bytes] = {
            JWKS_PATH: json.dumps({"keys": [{**public, "kid": self.key_id, "use": "sig", "alg": "RS256"}]}).encode()
        }
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self._documents))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._documents[DISCOVERY_PATH] = json.dumps(
            {"issuer": self.url, "jwks_uri": self.jwks_url, "id_token_signing_alg_values_supported": ["RS256"]}
        ).encode()
        threading.Thread(target=self._server.serve_forever, name="test-token-issuer", daemon=True).start()

    @property
    def jwks_url(self) -> str:
        return f"{self.url}{JWKS_PATH}"

    @property
    def public_key_pem(self) -> bytes:
        """The public key as PEM: what an attacker has, for the algorithm-confusion test."""
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def auth_config(self) -> AuthConfig:
        return AuthConfig(issuer=self.url, audience=self.audience, jwks_url=self.jwks_url)

    def environment(self) -> dict[str, str]:
        """The settings that make a service accept this issuer's tokens."""
        return {"LOTSE_JWT_ISSUER": self.url, "LOTSE_JWT_JWKS_URL": self.jwks_url, "LOTSE_JWT_AUDIENCE": self.audience}

    def issue(
        self,
        subject: str,
        roles: Iterable[Role | str],
        tenant: str | None = None,
        organisation: str | None = None,
        lifetime: timedelta = timedelta(hours=1),
    ) -> str:
        """An access token as Lotse's provider issues it: sub, tenant, roles, org, iss, aud, exp."""
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": self.audience,
            "sub": subject,
            "iat": now,
            "exp": now + lifetime,
            "roles": [str(role) for role in roles],
        }
        if tenant is not None:
            claims["tenant"] = tenant
        if organisation is not None:
            claims["org"] = organisation
        return self.sign(claims)

    def sign(self, claims: Mapping[str, Any]) -> str:
        """Any claims, signed with the issuer's key (for tokens ``issue`` would not produce)."""
        return jwt.encode(dict(claims), self._key, algorithm="RS256", headers={"kid": self.key_id})

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(documents: Mapping[str, bytes]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = documents.get(self.path.split("?")[0])
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the tests' output stays readable

    return Handler


@cache
def issuer() -> TokenIssuer:
    """The test process's issuer, started on first use."""
    return TokenIssuer()


def issue(
    subject: str,
    roles: Iterable[Role | str],
    tenant: str | None = None,
    organisation: str | None = None,
    lifetime: timedelta = timedelta(hours=1),
) -> str:
    """A token of the test process's issuer, which every service the tests start accepts."""
    return issuer().issue(subject, roles, tenant=tenant, organisation=organisation, lifetime=lifetime)
