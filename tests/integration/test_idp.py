"""The local OpenID provider (deploy/devstack/idp) as the real Node.js process, signed in to as the
portal does it, and a real registry that accepts its tokens: discovery and key set, the
authorization code flow with PKCE (required), wrong passwords, self-registration for a
municipality, refresh, sign-out and a partner system's client credentials."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio

from lotse_devstack import Stack
from lotse_devstack.idp import (
    AccountsFile,
    MachineClient,
    SignInRefused,
    authorization_url,
    client_credentials,
    pkce_pair,
    refresh,
    register,
    sign_in,
)
from lotse_registry.app import create_app
from lotse_runtime.auth import Role, TokenVerifier
from tests.integration.registry.conftest import registry_settings
from tests.integration.registry.support import organisation_body, tenant_body, volunteer_body
from tests.support.idp import PORTAL_CALLBACK, PORTAL_HOME, TestIdp, account, local_idp
from tests.support.running import RunningService, serving

MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")
TENANT = f"idp-{uuid.uuid4().hex[:8]}"
OTHER_TENANT = f"idp-{uuid.uuid4().hex[:8]}"
PARTNER = MachineClient(f"{TENANT}-case-management", "a-partner-secret-" + uuid.uuid4().hex, TENANT)


def _claims(token: str) -> dict[str, Any]:
    # Read only: the registry below verifies them for real.
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestIdp]:
    people = [
        account("admin", Role.PLATFORM_ADMIN),
        account("office", Role.COORDINATOR, TENANT),
        account("elsewhere", Role.COORDINATOR, OTHER_TENANT),
    ]
    with local_idp(tmp_path_factory.mktemp("idp"), people, [PARTNER]) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def registry(stack: Stack, idp: TestIdp) -> AsyncIterator[RunningService[Any]]:
    """A real registry that trusts the provider (and nothing else: not the tests' own issuer)."""
    prefix = "idp" + uuid.uuid4().hex[:6]
    settings = registry_settings(stack, prefix, jwt_issuer=idp.issuer, jwt_jwks_url=idp.idp.jwks_url)
    async with serving(RunningService, stack, create_app(settings), settings, prefix) as running:
        admin = idp.sign_in("admin").access_token
        created = await running.http.post(
            "/tenants", json=tenant_body(TENANT), headers={"Authorization": f"Bearer {admin}"}
        )
        assert created.status_code == 201, created.text
        yield running


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_discovery_and_the_key_set_answer(idp: TestIdp) -> None:
    discovery = httpx.get(idp.idp.discovery_url).json()
    assert discovery["issuer"] == idp.issuer
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(discovery["grant_types_supported"])
    assert discovery["end_session_endpoint"].startswith(idp.issuer)
    keys = httpx.get(discovery["jwks_uri"]).json()["keys"]
    assert [(key["kty"], key["use"]) for key in keys] == [("RSA", "sig")]
    assert "d" not in keys[0]  # the public half only


@MODULE_LOOP
async def test_a_person_signs_in_with_pkce_and_the_registry_accepts_the_token(
    idp: TestIdp, registry: RunningService[Any]
) -> None:
    tokens = idp.sign_in("office")
    claims = _claims(tokens.access_token)
    person = idp.accounts["office"]
    assert (claims["iss"], claims["aud"], claims["sub"]) == (idp.issuer, "lotse", person.sub)
    assert (claims["tenant"], claims["roles"]) == (TENANT, ["coordinator"])
    identity = _claims(tokens.id_token or "")
    assert (identity["name"], identity["email"], identity["locale"]) == (person.name, person.email, "de")
    assert (identity["tenant"], identity["roles"]) == (TENANT, ["coordinator"])

    created = await registry.http.post(
        f"/tenants/{TENANT}/organisations", json=organisation_body(), headers=_bearer(tokens.access_token)
    )
    assert created.status_code == 201, created.text
    # The same role of another municipality sees nothing of this one.
    stranger = idp.sign_in("elsewhere").access_token
    refused = await registry.http.get(f"/tenants/{TENANT}/organisations", headers=_bearer(stranger))
    assert refused.status_code == 404
    # A refreshed token is accepted as well.
    assert tokens.refresh_token is not None
    renewed = refresh(idp.issuer, tokens.refresh_token, client=idp.portal)
    listed = await registry.http.get(f"/tenants/{TENANT}/organisations", headers=_bearer(renewed.access_token))
    assert listed.status_code == 200 and listed.json()["items"]


def test_a_wrong_password_is_refused_next_to_the_field_without_telling_which_accounts_exist(idp: TestIdp) -> None:
    with pytest.raises(SignInRefused) as wrong:
        idp.sign_in("office", "not-the-password")
    with pytest.raises(SignInRefused) as in_english:
        idp.sign_in("office", "not-the-password", ui_locales="en")
    with pytest.raises(SignInRefused) as unknown:
        sign_in(idp.issuer, "nobody-of-that-name", "not-the-password", client=idp.portal)
    assert wrong.value.status == unknown.value.status == 401
    assert wrong.value.errors == {"password": "Benutzername oder Passwort ist falsch."}
    assert in_english.value.errors == {"password": "The user name or the password is wrong."}
    # An unknown name reads exactly like a wrong password.
    assert unknown.value.errors == wrong.value.errors


def test_the_login_page_is_plain_accessible_html_in_the_persons_language(idp: TestIdp) -> None:
    verifier, challenge = pkce_pair()
    del verifier
    url = authorization_url(idp.issuer, idp.portal, challenge, "s", "openid", ui_locales="en-GB de")
    page = httpx.get(url, follow_redirects=True)
    assert page.status_code == 200
    text = page.text
    assert '<html lang="en">' in text and '<meta name="viewport"' in text
    assert '<label for="login">' in text and '<label for="password">' in text
    assert 'autocomplete="current-password"' in text and "<script" not in text


def test_a_sign_in_request_without_pkce_is_refused(idp: TestIdp) -> None:
    url = authorization_url(idp.issuer, idp.portal, None, "s", "openid")
    answer = httpx.get(url, follow_redirects=False)
    # Back to the client with an error, never to a login page that would end in a code.
    assert answer.status_code in (302, 303)
    location = answer.headers["location"]
    assert location.startswith(PORTAL_CALLBACK), location
    assert "error=invalid_request" in location and "PKCE" in location and "code=" not in location


@MODULE_LOOP
async def test_self_registration_for_a_municipality_makes_a_volunteer_the_registry_accepts(
    idp: TestIdp, registry: RunningService[Any]
) -> None:
    email = f"neu-{uuid.uuid4().hex[:6]}@example.org"
    tokens = register(
        idp.issuer, TENANT, email=email, name="Neu Hier", password="ein-langes-passwort", client=idp.portal
    )
    claims = _claims(tokens.access_token)
    assert (claims["tenant"], claims["roles"]) == (TENANT, ["volunteer"])
    assert str(uuid.UUID(claims["sub"])) == claims["sub"]
    # Kept in the accounts file (it survives a restart), with a hash and no password in clear.
    (kept,) = [a for a in AccountsFile(idp.idp.accounts.path).read().accounts if a.email == email]
    assert kept.sub == claims["sub"] and kept.password is None
    assert kept.password_hash is not None and kept.password_hash.startswith("scrypt$")
    # The registry takes the subject as the volunteer id of a self-registration.
    registered = await registry.http.post(
        f"/tenants/{TENANT}/volunteers", json=volunteer_body(), headers=_bearer(tokens.access_token)
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["volunteer_id"] == claims["sub"]
    # ... and the new account signs in with its password from now on.
    again = idp.sign_in(email, "ein-langes-passwort")
    assert _claims(again.access_token)["sub"] == claims["sub"]


def test_registration_needs_the_municipality_and_a_long_enough_password(idp: TestIdp) -> None:
    with pytest.raises(SignInRefused) as short:
        register(idp.issuer, TENANT, email="kurz@example.org", name="Kurz", password="kurz", client=idp.portal)
    assert set(short.value.errors) == {"password"}
    verifier, challenge = pkce_pair()
    del verifier
    nowhere = authorization_url(idp.issuer, idp.portal, challenge, "s", "openid", prompt="create")
    page = httpx.get(nowhere, follow_redirects=True)
    assert page.status_code == 400 and "Portal Ihrer Kommune" in html.unescape(page.text)


def test_sign_out_returns_to_the_portal_and_ends_the_session(idp: TestIdp) -> None:
    tokens = idp.sign_in("office")
    with httpx.Client(follow_redirects=False) as browser:
        # A session of this browser first (the same flow, with its cookies kept).
        _, challenge = pkce_pair()
        start = authorization_url(idp.issuer, idp.portal, challenge, "s", "openid")
        login = browser.get(start, follow_redirects=True)
        action = re.search(r'<form method="post" action="([^"]+)"', login.text)
        assert action is not None
        person = idp.accounts["office"]
        done = browser.post(
            httpx.URL(str(login.url)).join(action.group(1)), data={"login": "office", "password": person.password}
        )
        while done.status_code in (302, 303) and not done.headers["location"].startswith(PORTAL_CALLBACK):
            done = browser.get(httpx.URL(str(done.url)).join(done.headers["location"]))
        assert done.headers["location"].startswith(PORTAL_CALLBACK)
        end_session = httpx.get(idp.idp.discovery_url).json()["end_session_endpoint"]
        confirm = browser.get(
            end_session,
            params={"id_token_hint": tokens.id_token, "post_logout_redirect_uri": PORTAL_HOME, "ui_locales": "de"},
        )
        assert confirm.status_code == 200 and 'lang="de"' in confirm.text
        form = re.search(r'<form[^>]*id="op.logoutForm"[^>]*action="([^"]+)"', confirm.text) or re.search(
            r'<form[^>]*action="([^"]+)"[^>]*id="op.logoutForm"', confirm.text
        )
        assert form is not None
        hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', confirm.text))
        signed_out = browser.post(form.group(1), data={**hidden, "logout": "yes"})
        assert signed_out.status_code in (302, 303)
        assert signed_out.headers["location"] == PORTAL_HOME
        # Signed out: the next sign-in asks for the password again.
        again = browser.get(start, follow_redirects=True)
        assert '<label for="password">' in again.text


@MODULE_LOOP
async def test_a_partner_systems_client_credentials_token_names_its_municipality(
    idp: TestIdp, registry: RunningService[Any]
) -> None:
    token = client_credentials(idp.issuer, PARTNER.client_id, PARTNER.client_secret).access_token
    principal = TokenVerifier(idp.auth_config()).verify(token)
    assert (principal.subject, principal.tenant) == (PARTNER.client_id, TENANT)
    assert principal.roles == frozenset({Role.PARTNER})
    tenant = await registry.http.get(f"/tenants/{TENANT}", headers=_bearer(token))
    assert tenant.status_code == 200, tenant.text


def test_tokens_of_another_issuer_are_not_the_providers(idp: TestIdp) -> None:
    """The registry above trusts the provider only: a token of the tests' own issuer is refused."""
    from lotse_runtime.problems import Problem
    from tests.support import tokens

    with pytest.raises(Problem) as refused:
        TokenVerifier(idp.auth_config()).verify(tokens.issue(str(uuid.uuid4()), [Role.PLATFORM_ADMIN]))
    assert refused.value.status == 401
