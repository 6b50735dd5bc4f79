"""Signed answer links: HMAC-SHA256 over the proposal, the tenant and the expiry.

One token per proposal serves both the accept and the decline link (the choice travels in the
query); it is single-use because answering closes the proposal, and it expires with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime


class InvalidToken(Exception):
    def __init__(self, reason: str, tenant: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason  # "tampered" or "expired"
        self.tenant = tenant  # known only when the signature held


@dataclass(frozen=True)
class AnswerClaims:
    proposal_id: str
    tenant: str
    expires_at: datetime


def sign(secret: str, proposal_id: str, tenant: str, expires_at: datetime) -> str:
    payload = {"p": proposal_id, "t": tenant, "e": int(expires_at.timestamp()), "n": secrets.token_hex(4)}
    body = _encode(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_signature(secret, body)}"


def verify(secret: str, token: str, now: datetime) -> AnswerClaims:
    body, _, signature = token.partition(".")
    if not body or not signature or not hmac.compare_digest(signature, _signature(secret, body)):
        raise InvalidToken("tampered")
    try:
        payload = json.loads(_decode(body))
        claims = AnswerClaims(str(payload["p"]), str(payload["t"]), datetime.fromtimestamp(int(payload["e"]), UTC))
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidToken("tampered") from error
    if now >= claims.expires_at:
        raise InvalidToken("expired", claims.tenant)
    return claims


def _signature(secret: str, body: str) -> str:
    return _encode(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
