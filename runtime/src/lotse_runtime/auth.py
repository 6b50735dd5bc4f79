"""Who is calling: bearer JWTs with ``tenant``, ``roles`` and (for initiative admins) ``org``.

Development signs tokens with a local HS256 key; production verifies an OIDC issuer's tokens
against its JWKS. Algorithms are pinned per mode, so ``alg: none`` or an algorithm swap is
refused, and issuer, audience and expiry are always checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lotse_runtime.problems import Problem

ASYMMETRIC_ALGORITHMS = ["RS256", "ES256", "PS256"]


class Role(StrEnum):
    PLATFORM_ADMIN = "platform-admin"
    COORDINATOR = "coordinator"
    INITIATIVE_ADMIN = "initiative-admin"
    VOLUNTEER = "volunteer"
    PARTNER = "partner"


@dataclass(frozen=True)
class Principal:
    """The verified caller. ``subject`` is the volunteer id for volunteers."""

    subject: str
    tenant: str | None
    roles: frozenset[Role]
    organisation: str | None = None

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))


@dataclass(frozen=True)
class AuthConfig:
    issuer: str
    audience: str
    hs256_key: str | None = None  # development
    jwks_url: str | None = None  # production: the OIDC issuer's key set

    def __post_init__(self) -> None:
        if bool(self.hs256_key) == bool(self.jwks_url):
            raise ValueError("configure exactly one of a development HS256 key or a JWKS URL")


class TokenVerifier:
    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._jwks = jwt.PyJWKClient(config.jwks_url, cache_keys=True) if config.jwks_url else None

    def verify(self, token: str) -> Principal:
        try:
            if self._jwks is not None:
                key: Any = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = ASYMMETRIC_ALGORITHMS
            else:
                key, algorithms = self.config.hs256_key, ["HS256"]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.config.audience,
                issuer=self.config.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
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
    return Principal(subject=str(claims["sub"]), tenant=tenant, roles=roles, organisation=organisation)


def tenant_of(principal: Principal) -> str:
    """The caller's municipality. A platform admin's token may carry tenant roles but no tenant:
    refused (403) rather than letting a query run unscoped."""
    if principal.tenant is None:
        raise Problem(403, "Forbidden", "this needs a token of a municipality (claim tenant)")
    return principal.tenant


def issue_token(
    config: AuthConfig,
    *,
    subject: str,
    roles: Iterable[Role | str],
    tenant: str | None = None,
    organisation: str | None = None,
    lifetime: timedelta = timedelta(hours=12),
) -> str:
    """A development token signed with the local key (for the demo, tests and tooling)."""
    if not config.hs256_key:
        raise ValueError("tokens can only be issued with the development HS256 key")
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": config.issuer,
        "aud": config.audience,
        "sub": subject,
        "iat": now,
        "exp": now + lifetime,
        "roles": [str(role) for role in roles],
    }
    if tenant is not None:
        claims["tenant"] = tenant
    if organisation is not None:
        claims["org"] = organisation
    return jwt.encode(claims, config.hs256_key, algorithm="HS256")


_bearer = HTTPBearer(auto_error=False)


def authenticated(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
    """FastAPI dependency: the verified caller, or 401. The app keeps its verifier in
    ``app.state.token_verifier``."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(401, "Missing token", "send Authorization: Bearer <token>")
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier.verify(credentials.credentials)


def requires(*roles: Role) -> Callable[..., Principal]:
    """FastAPI dependency: the caller must hold one of ``roles``, else 403."""

    def check(principal: Principal = Depends(authenticated)) -> Principal:
        if not principal.has(*roles):
            wanted = ", ".join(role.value for role in roles)
            raise Problem(403, "Forbidden", f"this needs one of the roles: {wanted}")
        return principal

    return check
