"""OpenID Connect sign-in: authorization code flow with PKCE (S256), through Authlib.

The provider's endpoints come from its discovery document. The ID token is checked against the
provider's JWKS (signature, issuer, audience = our client id, expiry, nonce); the access token,
which the portal passes on to the services, is verified the way the services verify it
(``lotse_runtime.auth``), so the portal knows the same tenant and roles they will see.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import httpx2
import jwt
import structlog
from authlib.common.security import generate_token

# Authlib's client runs on httpx2 (a dependency of the portal; on httpx it warns that httpx is
# deprecated). The portal's own calls go through httpx, like all of Lotse's.
from authlib.integrations.httpx_client import AsyncOAuth2Client

from lotse_portal.settings import PortalSettings
from lotse_portal.store import PendingSignIn, Session, SignedInUser, Store, session_key
from lotse_runtime.auth import Principal, Role, TokenVerifier

log = structlog.get_logger("lotse.portal.signin")

# Refresh an access token this long before it expires, so a call never carries a stale one.
REFRESH_MARGIN = timedelta(seconds=30)
DISCOVERY_TTL_SECONDS = 3600.0
DISCOVERY_RETRY_SECONDS = 5.0
# How often a request looks whether the refresh another replica runs for its session is done.
REFRESH_POLL_SECONDS = 0.1


def _expiring(user: SignedInUser) -> bool:
    return user.expires_at - REFRESH_MARGIN <= datetime.now(UTC)


def _newer(candidate: SignedInUser, than: SignedInUser) -> bool:
    return candidate.subject == than.subject and candidate.expires_at > than.expires_at and not _expiring(candidate)


class SignInFailed(Exception):
    """The provider refused, or what came back does not verify; the person is asked to try again."""


class NoOrganisationClaim(SignInFailed):
    """An initiative admin's account that names no initiative (the ``org`` claim the services
    require): trying again does not help, the person is told whom to ask."""


def _initiative_admin_without_organisation(access_token: str) -> bool:
    """Whether an access token that did not verify is an initiative admin's without ``org``. Read
    without verifying: it only chooses which page explains the refusal, and signs nobody in."""
    try:
        claims = jwt.decode(access_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    roles = claims.get("roles")
    return isinstance(roles, list) and Role.INITIATIVE_ADMIN.value in roles and not claims.get("org")


@dataclass(frozen=True)
class ProviderEndpoints:
    authorization: str
    token: str
    jwks: str
    end_session: str | None
    revocation: str | None


def form_origins(issuer: str | None, endpoints: ProviderEndpoints | None) -> tuple[str, ...]:
    """Where the portal's forms may lead besides the portal: the origins of the provider's pages
    people are sent to (sign-in, sign-out) as its discovery document names them, which may be
    other than the issuer's; the issuer's alone until the document is known."""
    urls = [issuer, *((endpoints.authorization, endpoints.end_session) if endpoints else ())]
    return tuple(dict.fromkeys(origin for url in urls if url and (origin := _origin(url))))


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not one
        return None
    return f"{parts.scheme}://{host}{port}"


class OpenIdClient:
    def __init__(self, settings: PortalSettings, http: httpx.AsyncClient, verifier: TokenVerifier) -> None:
        self.settings = settings
        self.http = http
        self.verifier = verifier
        self._endpoints: ProviderEndpoints | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self._id_token_keys: jwt.PyJWKClient | None = None
        self._refresh_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # Longer than a refresh can take (the token call and the key set, each within the timeout).
        self._refresh_lease = timedelta(seconds=3 * settings.backend_timeout_seconds)

    @property
    def known_endpoints(self) -> ProviderEndpoints | None:
        """The endpoints of the discovery document fetched last, without asking the provider."""
        return self._endpoints

    def form_origins(self) -> tuple[str, ...]:
        return form_origins(self.settings.jwt_issuer, self._endpoints)

    async def discover(self) -> None:
        """The discovery document, fetched as soon as the provider answers (from the start: the
        pages' form-action must name its sign-out endpoint before anyone signs out)."""
        while True:
            try:
                await self.endpoints()
                return
            except SignInFailed as failure:
                log.info("provider discovery not yet available", reason=str(failure))
                await asyncio.sleep(DISCOVERY_RETRY_SECONDS)

    @property
    def redirect_uri(self) -> str:
        return self.settings.public_url.rstrip("/") + "/signin/callback"

    async def endpoints(self) -> ProviderEndpoints:
        """The discovery document, fetched when first needed (the portal starts while the provider is
        away) and again after an hour."""
        async with self._lock:
            if self._endpoints is None or time.monotonic() - self._fetched_at > DISCOVERY_TTL_SECONDS:
                try:
                    response = await self.http.get(self.settings.discovery_url)
                    response.raise_for_status()
                    document: dict[str, Any] = response.json()
                    if document.get("issuer") != self.settings.jwt_issuer:
                        raise SignInFailed(f"the provider names itself {document.get('issuer')!r}")
                    self._endpoints = ProviderEndpoints(
                        authorization=document["authorization_endpoint"],
                        token=document["token_endpoint"],
                        jwks=document["jwks_uri"],
                        end_session=document.get("end_session_endpoint"),
                        revocation=document.get("revocation_endpoint"),
                    )
                except (httpx.HTTPError, ValueError, KeyError) as error:
                    raise SignInFailed(f"the provider's discovery document is unavailable: {error}") from error
                self._fetched_at = time.monotonic()
                self._id_token_keys = jwt.PyJWKClient(self._endpoints.jwks, cache_keys=True)
            return self._endpoints

    def _client(self, *, scope: str | None = None, **kwargs: Any) -> AsyncOAuth2Client:
        secret = self.settings.oidc_client_secret
        return AsyncOAuth2Client(
            client_id=self.settings.oidc_client_id,
            client_secret=secret.get_secret_value() if secret else None,
            scope=scope,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=self.settings.backend_timeout_seconds,
            **kwargs,
        )

    async def start(
        self, next_path: str, language: str, *, tenant: str | None = None, register: bool = False
    ) -> tuple[str, PendingSignIn]:
        """Where to send the browser, and what the callback must find in the session."""
        endpoints = await self.endpoints()
        pending = PendingSignIn(
            state=generate_token(32),
            nonce=generate_token(32),
            code_verifier=generate_token(64),
            next_path=next_path,
            tenant=tenant,
        )
        extra: dict[str, str] = {"ui_locales": language, "nonce": pending.nonce}
        if register:
            # OpenID Connect "prompt=create": the provider shows its registration page.
            extra["prompt"] = "create"
        if tenant:
            extra["lotse_tenant"] = tenant
        async with self._client(scope=self.settings.oidc_scope) as client:
            url, _ = client.create_authorization_url(
                endpoints.authorization, state=pending.state, code_verifier=pending.code_verifier, **extra
            )
        return url, pending

    async def finish(self, pending: PendingSignIn, code: str, state: str) -> tuple[SignedInUser, Principal]:
        if state != pending.state:
            raise SignInFailed("the sign-in answer does not belong to this browser session")
        endpoints = await self.endpoints()
        async with self._client() as client:
            try:
                token = await client.fetch_token(
                    endpoints.token, grant_type="authorization_code", code=code, code_verifier=pending.code_verifier
                )
            except Exception as error:
                raise SignInFailed(f"the provider refused the code: {error}") from error
        return await self._signed_in(dict(token), nonce=pending.nonce)

    async def current_user(self, store: Store, session: Session) -> SignedInUser | None:
        """The session's person with an access token that is not about to expire; None when the
        sign-in is over.

        Requests of one session that find the token expiring at the same time (tabs, a page and its
        form) refresh it once: a provider that rotates refresh tokens refuses the second use of one,
        and oidc-provider then even ends the whole grant. Within this process one request per session
        goes ahead (a lock); across replicas, the one that claims the refresh in the session's
        document does, and the others wait for the tokens it stores. Should a refresh be refused all
        the same, the tokens another request stored meanwhile are used if they are newer.
        """
        user = session.user
        if user is None or not _expiring(user):
            return user
        async with self._session_lock(session.id):
            deadline = time.monotonic() + self._refresh_lease.total_seconds()
            while True:
                stored = await store.load(session.id)
                if stored is None or stored.user is None:
                    return None  # signed out meanwhile
                if not _expiring(stored.user):
                    return stored.user  # another request refreshed
                if await store.claim_refresh(session.id, self._refresh_lease):
                    break
                if time.monotonic() > deadline:
                    raise SignInFailed("another request's refresh of this session did not finish")
                await asyncio.sleep(REFRESH_POLL_SECONDS)  # another replica refreshes: wait for its tokens
            try:
                refreshed = await self.refresh(stored.user)
                if refreshed is None:
                    latest = await store.load(session.id)
                    if latest is not None and latest.user is not None and _newer(latest.user, stored.user):
                        return latest.user
                    return None
                if not await store.store_refreshed(replace(stored, user=refreshed)):
                    return None  # signed out while the provider answered
                return refreshed
            finally:
                await store.release_refresh(session.id)

    def _session_lock(self, session_id: str) -> asyncio.Lock:
        # Weakly held: a session's lock lives while requests of it wait for or hold it.
        key = session_key(session_id)
        lock = self._refresh_locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._refresh_locks[key] = lock
        return lock

    async def refresh(self, user: SignedInUser) -> SignedInUser | None:
        """A fresh access token when the current one is about to expire; None when the sign-in is over.
        Use :meth:`current_user` for a session: it refreshes once however many requests ask."""
        if not _expiring(user):
            return user
        if not user.refresh_token:
            return None
        endpoints = await self.endpoints()
        # No scope: the grant's own (RFC 6749 section 6). Authlib would send the scope asked for at
        # sign-in, which holds offline_access, and a provider refuses a scope the refresh token lacks.
        async with self._client() as client:
            try:
                token = await client.refresh_token(endpoints.token, refresh_token=user.refresh_token)
            except httpx2.TransportError as error:  # the provider is away: not the person's fault
                raise SignInFailed(f"the provider did not answer the refresh: {error!r}") from error
            except Exception:  # noqa: BLE001 - a refusal (expired, revoked) ends the sign-in
                return None
        token = dict(token)
        token.setdefault("id_token", user.id_token)
        token.setdefault("refresh_token", user.refresh_token)
        try:
            refreshed, _ = await self._signed_in(token, nonce=None)
        except SignInFailed:
            return None
        return refreshed

    async def revoke(self, user: SignedInUser | None) -> None:
        """End the grant at the provider (RFC 7009), so a copied refresh token is worth nothing after
        sign-out or erasure. Best effort: the session is gone from Lotse either way."""
        if user is None or not user.refresh_token:
            return
        try:
            endpoints = await self.endpoints()
            if endpoints.revocation is None:
                return
            async with self._client() as client:
                # types-authlib leaves revoke_token unannotated.
                await client.revoke_token(  # type: ignore[no-untyped-call]
                    endpoints.revocation, token=user.refresh_token, token_type_hint="refresh_token"
                )
        except Exception as error:  # noqa: BLE001 - the provider may be away; the session is deleted anyway
            log.warning("token revocation failed", error=type(error).__name__)

    async def sign_out_url(self, user: SignedInUser | None, language: str) -> str:
        """The provider's end-session endpoint, or the portal's start page if it has none."""
        home = self.settings.public_url.rstrip("/") + "/"
        try:
            endpoints = await self.endpoints()
        except SignInFailed:
            return home
        if endpoints.end_session is None:
            return home
        query = {"post_logout_redirect_uri": home, "client_id": self.settings.oidc_client_id, "ui_locales": language}
        if user is not None:
            query["id_token_hint"] = user.id_token
        return f"{endpoints.end_session}?{urlencode(query)}"

    async def _signed_in(self, token: dict[str, Any], *, nonce: str | None) -> tuple[SignedInUser, Principal]:
        access_token, id_token = token.get("access_token"), token.get("id_token")
        if not access_token or not id_token:
            raise SignInFailed("the provider sent no access token or no ID token")
        claims = await asyncio.to_thread(self._id_token_claims, id_token)
        if nonce is not None and claims.get("nonce") != nonce:
            raise SignInFailed("the ID token was issued for another sign-in (nonce)")
        try:
            principal = await asyncio.to_thread(self.verifier.verify, access_token)
        except Exception as error:
            if _initiative_admin_without_organisation(access_token):
                raise NoOrganisationClaim("an initiative admin's access token names no organisation (org)") from error
            raise SignInFailed(f"the access token does not verify: {error}") from error
        if principal.subject != claims.get("sub"):
            raise SignInFailed("the ID token and the access token name different people")
        expires_in = float(token.get("expires_in") or 300)
        user = SignedInUser(
            subject=principal.subject,
            volunteer_id=principal.volunteer_id,
            tenant=principal.tenant,
            roles=tuple(sorted(str(role) for role in principal.roles)),
            organisation=principal.organisation,
            name=str(claims.get("name") or claims.get("preferred_username") or claims.get("email") or ""),
            access_token=access_token,
            refresh_token=token.get("refresh_token"),
            id_token=id_token,
            expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
        )
        return user, principal

    def _id_token_claims(self, id_token: str) -> dict[str, Any]:
        assert self._id_token_keys is not None  # endpoints() ran before
        try:
            key = self._id_token_keys.get_signing_key_from_jwt(id_token).key
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=["RS256", "ES256", "PS256"],
                audience=self.settings.oidc_client_id,
                issuer=self.settings.jwt_issuer,
                options={"require": ["exp", "iss", "aud", "sub", "iat"]},
            )
        except jwt.PyJWTError as error:
            raise SignInFailed(f"the ID token does not verify: {error}") from error
        return claims
