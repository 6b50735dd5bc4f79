"""Where the portal's forms may lead (CSP form-action): the portal, and the provider's pages for
signing in and out as its discovery document names them, which need not be on the issuer's origin."""

from __future__ import annotations

from lotse_portal.signin import ProviderEndpoints, form_origins
from lotse_runtime.http_guards import page_policy

ISSUER = "https://login.example.org/realms/lotse"


def endpoints(authorization: str, end_session: str | None) -> ProviderEndpoints:
    return ProviderEndpoints(
        authorization=authorization,
        token=f"{ISSUER}/token",
        jwks=f"{ISSUER}/certs",
        end_session=end_session,
        revocation=None,
    )


def form_action(policy: str) -> list[str]:
    (directive,) = [part.split()[1:] for part in policy.split("; ") if part.startswith("form-action ")]
    return directive


def test_sign_out_on_another_origin_than_the_issuer_is_allowed() -> None:
    discovered = endpoints(f"{ISSUER}/auth", "https://logout.example.net:8443/session/end?x=1")
    assert form_action(page_policy(form_origins(ISSUER, discovered))) == [
        "'self'",
        "https://login.example.org",
        "https://logout.example.net:8443",
    ]


def test_sign_in_on_another_origin_too_and_each_origin_once() -> None:
    discovered = endpoints("https://sso.example.com/authorize", f"{ISSUER}/logout")
    assert form_origins(ISSUER, discovered) == ("https://login.example.org", "https://sso.example.com")


def test_before_the_discovery_document_is_known_the_issuer_alone() -> None:
    assert form_origins(ISSUER, None) == ("https://login.example.org",)
    assert form_origins(None, None) == ()


def test_what_is_no_origin_never_reaches_the_policy() -> None:
    discovered = endpoints("javascript:alert(1)", "https://user:secret@[2001:db8::1]:9443/end")
    assert form_origins(ISSUER, discovered) == ("https://login.example.org", "https://[2001:db8::1]:9443")
    # Whatever a caller hands in, nothing ends the directive or starts another.
    policy = page_policy(["https://ok.example", "https://evil.example; script-src *", "'unsafe-inline'"])
    assert form_action(policy) == ["'self'", "https://ok.example"]
    assert "script-src" not in policy
