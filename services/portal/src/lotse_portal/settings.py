"""The one settings class of the portal (environment variables prefixed with ``LOTSE_``)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from lotse_runtime.http_guards import HttpGuardSettings
from lotse_runtime.settings import PlatformSettings


class PortalSettings(PlatformSettings, HttpGuardSettings):
    database: str = Field("portal", description="MongoDB database the portal owns (sign-in sessions only)")
    http_host: str = Field("127.0.0.1", description="Address the portal listens on")
    http_port: int = Field(8000, description="Port of the portal")
    public_url: str = Field(
        "http://127.0.0.1:8000", description="The portal's address as people's browsers reach it (for sign-in)"
    )
    registry_url: str = Field("http://127.0.0.1:8001", description="Base URL of the registry API")
    matching_url: str = Field("http://127.0.0.1:8002", description="Base URL of the matching API")
    notifications_url: str = Field("http://127.0.0.1:8003", description="Base URL of the notifications API")
    oidc_client_id: str = Field("lotse-portal", description="The portal's client id at the OpenID provider")
    oidc_client_secret: SecretStr | None = Field(
        None, description="The portal's client secret at the OpenID provider. Development generates one"
    )
    oidc_discovery_url: str | None = Field(
        None,
        description=(
            "Where the portal itself reads the provider's discovery document, when the issuer's address "
            "is one only browsers reach (compose: Keycloak as http://keycloak:8080 inside, localhost "
            "outside). Default: <LOTSE_JWT_ISSUER>/.well-known/openid-configuration"
        ),
    )
    oidc_scope: str = Field("openid profile email offline_access", description="Scopes the portal asks for")
    session_hours: float = Field(8.0, gt=0, le=24 * 14, description="How long a sign-in lasts without use")
    cookie_secure: bool | None = Field(
        None, description="Send the session cookie over HTTPS only. Default: on outside development"
    )
    backend_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of a call to a service's API")
    public_cache_seconds: float = Field(
        60.0, ge=0, le=3600, description="How long public facts (municipalities, consent texts) are kept"
    )

    def secure_cookie(self) -> bool:
        return self.cookie_secure if self.cookie_secure is not None else self.env != "development"

    @property
    def discovery_url(self) -> str:
        if self.oidc_discovery_url:
            return self.oidc_discovery_url
        return str(self.jwt_issuer or "").rstrip("/") + "/.well-known/openid-configuration"
