"""Who is calling: bearer JWTs of an OpenID Connect provider, with ``tenant``, ``roles`` and (for
initiative admins) ``org``.

Every mode verifies the same way: the provider's key set (JWKS), fetched and cached by
``PyJWKClient``. Development and the tests run a real provider too (``lotse up`` a local one, the
tests a small issuer of their own), so no shared signing key exists that could leak or be
forgotten in a deployment. Algorithms are pinned to asymmetric ones, so ``alg: none`` or an HMAC
token "signed" with the public key is refused, and issuer, audience and expiry are always checked.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lotse_runtime.problems import Problem

ASYMMETRIC_ALGORITHMS = ["RS256", "ES256", "PS256"]
# The namespace of volunteer ids derived from subjects that are not UUIDs (see Principal.volunteer_id).
# Fixed forever: changing it would give every such volunteer a new id.
VOLUNTEER_ID_NAMESPACE = uuid.UUID("7d1b1f5e-3c52-4d0a-9a1e-6f0c2b8e4a17")
# How long a key set is fetched for at most; the provider being away answers 503, not a hang.
JWKS_TIMEOUT_SECONDS = 5


class Role(StrEnum):
    PLATFORM_ADMIN = "platform-admin"
    COORDINATOR = "coordinator"
    INITIATIVE_ADMIN = "initiative-admin"
    VOLUNTEER = "volunteer"
    PARTNER = "partner"
    # Reads the audit trail of its tenant, and nothing else (data protection officer, Art. 37 GDPR).
    DATA_PROTECTION_OFFICER = "data-protection-officer"


@dataclass(frozen=True)
class Principal:
    """The verified caller: the token's subject and issuer, its municipality, roles and organisation."""

    subject: str
    tenant: str | None
    roles: frozenset[Role]
    organisation: str | None = None
    # Empty only for principals built in code; a verified token always names its issuer.
    issuer: str = ""

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def volunteer_id(self) -> str:
        """The volunteer this caller is, when it holds the role volunteer.

        The subject itself when it is a UUID (Lotse's own provider and Keycloak issue those).
        Other providers issue subjects of their own shape (a number, an e-mail hash, a pairwise
        identifier), and Lotse's volunteer ids are UUIDs in every event contract: such a subject
        maps to the UUID v5 of a fixed Lotse namespace over ``"<issuer>#<subject>"``. The mapping
        is deterministic, so the same person gets the same volunteer id at every sign-in and in
        every service, and the issuer is part of it, so two providers' equal subjects stay two
        people.
        """
        try:
            return str(uuid.UUID(self.subject))
        except ValueError:
            return str(uuid.uuid5(VOLUNTEER_ID_NAMESPACE, f"{self.issuer}#{self.subject}"))


@dataclass(frozen=True)
class AuthConfig:
    """Whose tokens are accepted: the provider's issuer, Lotse's audience and the provider's key set."""

    issuer: str
    audience: str
    jwks_url: str


class TokenVerifier:
    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._jwks = jwt.PyJWKClient(config.jwks_url, cache_keys=True, timeout=JWKS_TIMEOUT_SECONDS)

    def verify(self, token: str) -> Principal:
        try:
            key: Any = self._jwks.get_signing_key_from_jwt(token).key
            claims = jwt.decode(
                token,
                key,
                algorithms=ASYMMETRIC_ALGORITHMS,
                audience=self.config.audience,
                issuer=self.config.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWKClientConnectionError as error:
            # The provider is away: not the caller's fault, so no 401 that would end a session.
            raise Problem(
                503, "Token issuer unavailable", "the sign-in provider's keys could not be fetched"
            ) from error
        except jwt.PyJWTError as error:
            raise Problem(401, "Invalid token", str(error)) from error
        return _principal(claims)


def _principal(claims: dict[str, Any]) -> Principal:
    raw_roles = claims.get("roles", [])
    # A list of strings: `role in known` of an object or a list would be a TypeError (500).
    if not isinstance(raw_roles, list) or not all(isinstance(role, str) for role in raw_roles):
        raise Problem(401, "Invalid token", "claim roles must be a list of strings")
    known = {role.value for role in Role}
    roles = frozenset(Role(role) for role in raw_roles if role in known)
    tenant = claims.get("tenant")
    if Role.PLATFORM_ADMIN not in roles and not isinstance(tenant, str):
        raise Problem(401, "Invalid token", "claim tenant is required")
    # Also a platform admin's, if present: it ends up in database queries, where an object would be an operator.
    if tenant is not None and not (isinstance(tenant, str) and tenant):
        raise Problem(401, "Invalid token", "claim tenant must be a non-empty string")
    organisation = claims.get("org")
    # An initiative admin acts for its organisation; without one, checks that compare the
    # organisation would compare against nothing.
    if Role.INITIATIVE_ADMIN in roles and not (isinstance(organisation, str) and organisation):
        raise Problem(401, "Invalid token", "claim org is required for the role initiative-admin")
    if organisation is not None and not isinstance(organisation, str):
        raise Problem(401, "Invalid token", "claim org must be a string")
    return Principal(
        subject=str(claims["sub"]), tenant=tenant, roles=roles, organisation=organisation, issuer=str(claims["iss"])
    )


def tenant_of(principal: Principal) -> str:
    """The caller's municipality. A platform admin's token may carry tenant roles but no tenant:
    refused (403) rather than letting a query run unscoped."""
    if principal.tenant is None:
        raise Problem(403, "Forbidden", "this needs a token of a municipality (claim tenant)")
    return principal.tenant


_bearer = HTTPBearer(auto_error=False)


def authenticated(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
    """FastAPI dependency: the verified caller, or 401. The app keeps its verifier in
    ``app.state.token_verifier``."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(401, "Missing token", "send Authorization: Bearer <token>")
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = verifier.verify(credentials.credentials)
    # Kept for what else counts the caller (a rate limit), so it is verified once.
    request.state.principal = principal
    return principal


def requires(*roles: Role) -> Callable[..., Principal]:
    """FastAPI dependency: the caller must hold one of ``roles``, else 403."""

    def check(principal: Principal = Depends(authenticated)) -> Principal:
        if not principal.has(*roles):
            wanted = ", ".join(role.value for role in roles)
            raise Problem(403, "Forbidden", f"this needs one of the roles: {wanted}")
        return principal

    return check
