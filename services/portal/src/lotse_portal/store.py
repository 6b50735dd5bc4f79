"""Persistence: the portal's only data, server-side sign-in sessions.

The browser holds a random session id in an ``HttpOnly`` cookie; the database keys the session by
the id's SHA-256 and keeps the person's tokens encrypted (AES-GCM) with a key derived from the id
(HKDF), so a copy of the database hands out neither live sessions nor bearer tokens. Sessions
expire through a TTL index a while after their last use; signing out deletes them.

Only a sign-in creates a session document (:meth:`Store.create`); every later save updates the
fields a request changed in a document that still exists (:meth:`Store.update`), so a request
still in flight when its session is deleted (sign-out, erasure) cannot bring it back, and one that
changed only the language cannot put back tokens another request has just refreshed.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

SESSIONS = "sessions"
# The deadline of a refresh in progress (see Store.claim_refresh); not part of the session itself.
REFRESH_LEASE = "refresh_lease"
# The fields of a session that would let their holder act as the person.
SECRET_FIELDS = ("access_token", "refresh_token", "id_token")


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _cipher(session_id: str) -> AESGCM:
    key = HKDF(hashes.SHA256(), 32, salt=None, info=b"lotse-portal session tokens").derive(session_id.encode())
    return AESGCM(key)


def seal(session_id: str, value: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = _cipher(session_id).encrypt(nonce, value.encode(), session_key(session_id).encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(session_id: str, value: str) -> str:
    raw = base64.urlsafe_b64decode(value.encode())
    return _cipher(session_id).decrypt(raw[:12], raw[12:], session_key(session_id).encode()).decode()


@dataclass(frozen=True)
class PendingSignIn:
    """What the callback checks: the state and nonce sent, the PKCE verifier, where to go next."""

    state: str
    nonce: str
    code_verifier: str
    next_path: str
    tenant: str | None = None


@dataclass(frozen=True)
class SignedInUser:
    """Who is signed in, from the verified access token, and the tokens to call the services with."""

    subject: str
    volunteer_id: str
    tenant: str | None
    roles: tuple[str, ...]
    organisation: str | None
    name: str
    access_token: str
    refresh_token: str | None
    id_token: str
    expires_at: datetime


@dataclass(frozen=True)
class Session:
    id: str
    csrf: str
    expires_at: datetime
    language: str | None = None
    pending: PendingSignIn | None = None
    user: SignedInUser | None = None
    flash: str | None = None
    # A new calendar feed's address, shown on the next page once (a secret: sealed like the tokens).
    feed_url: str | None = None

    @classmethod
    def new(cls, lifetime: timedelta) -> Session:
        return cls(id=new_secret(), csrf=new_secret(), expires_at=datetime.now(UTC) + lifetime)

    def to_document(self) -> dict[str, Any]:
        document = asdict(self)
        if document["user"]:
            for name in SECRET_FIELDS:
                if document["user"][name] is not None:
                    document["user"][name] = seal(self.id, document["user"][name])
        if document["feed_url"] is not None:
            document["feed_url"] = seal(self.id, document["feed_url"])
        document["_id"] = session_key(document.pop("id"))
        return document

    @classmethod
    def from_document(cls, session_id: str, document: dict[str, Any]) -> Session:
        pending, user = document.get("pending"), document.get("user")
        user_record = None
        if user:
            try:
                opened = {name: unseal(session_id, user[name]) if user[name] else None for name in SECRET_FIELDS}
            except (InvalidTag, ValueError):
                opened = None  # not this id's tokens: signed out
            if opened is not None:
                expires = _aware(user["expires_at"])
                user_record = SignedInUser(**{**user, **opened, "roles": tuple(user["roles"]), "expires_at": expires})
        return cls(
            id=session_id,
            csrf=document["csrf"],
            expires_at=_aware(document["expires_at"]),
            language=document.get("language"),
            pending=PendingSignIn(**pending) if pending else None,
            user=user_record,
            flash=document.get("flash"),
            feed_url=_unsealed(session_id, document.get("feed_url")),
        )

    def renewed(self, lifetime: timedelta) -> Session:
        return replace(self, expires_at=datetime.now(UTC) + lifetime)


def _unsealed(session_id: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return unseal(session_id, value)
    except (InvalidTag, ValueError):
        return None


def _aware(moment: datetime) -> datetime:
    # MongoDB hands datetimes back naive (UTC).
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Store:
    database: AsyncDatabase[dict[str, Any]]
    sessions: Any = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = self.database[SESSIONS]

    async def ensure_indexes(self) -> None:
        await self.sessions.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)

    async def load(self, session_id: str) -> Session | None:
        document = await self.sessions.find_one({"_id": session_key(session_id)})
        if document is None:
            return None
        session = Session.from_document(session_id, document)
        return session if session.expires_at > datetime.now(UTC) else None

    async def create(self, session: Session) -> None:
        """A new session: at sign-in (its start, and the new id after it), never for an existing one."""
        await self.sessions.insert_one(session.to_document())

    async def update(self, session: Session, fields: Iterable[str]) -> bool:
        """Writes ``fields`` (and the renewed expiry) into the stored session; False when it no
        longer exists (signed out or erased meanwhile), which stays so: nothing is created here."""
        document = session.to_document()
        changes = {name: document[name] for name in {*fields, "expires_at"}}
        result = await self.sessions.update_one({"_id": document["_id"]}, {"$set": changes})
        return bool(result.matched_count)

    async def claim_refresh(self, session_id: str, lease: timedelta) -> bool:
        """Whether this request may refresh the session's tokens: True for the one request, of any
        replica, that claims it while no other claim runs (a claim ends after ``lease`` at the
        latest, should its request die)."""
        now = datetime.now(UTC)
        result = await self.sessions.update_one(
            {"_id": session_key(session_id), "$or": [{REFRESH_LEASE: None}, {REFRESH_LEASE: {"$lt": now}}]},
            {"$set": {REFRESH_LEASE: now + lease}},
        )
        return bool(result.modified_count)

    async def store_refreshed(self, session: Session) -> bool:
        """The refreshed tokens of the session, and its claim released; False if it is gone."""
        document = session.to_document()
        result = await self.sessions.update_one(
            {"_id": document["_id"]},
            {"$set": {"user": document["user"], "expires_at": document["expires_at"]}, "$unset": {REFRESH_LEASE: ""}},
        )
        return bool(result.matched_count)

    async def release_refresh(self, session_id: str) -> None:
        await self.sessions.update_one({"_id": session_key(session_id)}, {"$unset": {REFRESH_LEASE: ""}})

    async def delete(self, session_id: str) -> None:
        await self.sessions.delete_one({"_id": session_key(session_id)})

    async def sessions_of(self, tenant: str, volunteer_id: str) -> list[dict[str, Any]]:
        """The person's sign-in sessions (the subject-access export): their tokens are sealed."""
        query = {"user.tenant": tenant, "user.volunteer_id": volunteer_id}
        found: list[dict[str, Any]] = await self.sessions.find(query).sort("expires_at", ASCENDING).to_list()
        return found
