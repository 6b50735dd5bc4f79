"""Signed answer links: HMAC-SHA256 over the proposal, the tenant and the expiry.

Notifications signs a link when it renders a proposal mail (so only that mail holds it, never a
topic or a database); matching verifies it with the same ``answer_link_secret``. One token per
link serves both accept and decline (the choice travels in the query); it is single-use because
answering closes the proposal, and it expires with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import SecretStr


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


def secret_value(secret: SecretStr | None) -> str:
    """The key itself; the settings refuse to load without one, so None is a wiring mistake."""
    if secret is None:
        raise RuntimeError("LOTSE_ANSWER_LINK_SECRET is not set")
    return secret.get_secret_value()


def sign(secret: str, proposal_id: str, tenant: str, expires_at: datetime) -> str:
    payload = {"p": proposal_id, "t": tenant, "e": int(expires_at.timestamp()), "n": secrets.token_hex(4)}
    body = _encode(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_signature(secret, body)}"


def link(base_url: str, token: str, choice: str) -> str:
    return f"{base_url.rstrip('/')}/answers/{token}?choice={choice}"


def verify(secret: str, token: str, now: datetime) -> AnswerClaims:
    body, _, signature = token.partition(".")
    if not body or not signature or not _signed(secret, body, signature):
        raise InvalidToken("tampered")
    try:
        payload = json.loads(_decode(body))
        claims = AnswerClaims(str(payload["p"]), str(payload["t"]), datetime.fromtimestamp(int(payload["e"]), UTC))
    except (ValueError, KeyError, TypeError, OverflowError, OSError) as error:
        raise InvalidToken("tampered") from error
    if now >= claims.expires_at:
        raise InvalidToken("expired", claims.tenant)
    return claims


def unverified_tenant(token: str) -> str | None:
    """The tenant a token names, without checking its signature: to route it to the replica that
    answers for the tenant, which verifies it (``verify``). None if it names none."""
    try:
        tenant = json.loads(_decode(token.partition(".")[0]))["t"]
    except (ValueError, KeyError, TypeError):
        return None
    return tenant if isinstance(tenant, str) else None


def _signed(secret: str, body: str, signature: str) -> bool:
    # Compared as bytes: compare_digest refuses a str with non-ASCII characters (TypeError).
    try:
        return hmac.compare_digest(signature.encode(), _signature(secret, body).encode())
    except UnicodeError:  # a lone surrogate cannot be ours
        return False


def _signature(secret: str, body: str) -> str:
    return _encode(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
