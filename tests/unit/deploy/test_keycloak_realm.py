"""The compose installation's OpenID provider, offline (no Docker engine here): Keycloak's realm file
holds the client, mappers and roles the services and the portal need, and the compose file runs it
pinned, imports the realm and points the services at its key set."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from lotse_runtime.auth import Role
from tests.unit.deploy.validation import ROOT

REALM_FILE = ROOT / "deploy" / "compose" / "keycloak" / "lotse-realm.json"
Document = dict[str, Any]


@pytest.fixture(scope="module")
def realm() -> Document:
    document: Document = json.loads(REALM_FILE.read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="module")
def portal(realm: Document) -> Document:
    (client,) = [client for client in realm["clients"] if client["clientId"] == "lotse-portal"]
    return client


def _mapper(client: Document, kind: str, **config: str) -> Document:
    """The one mapper of this type whose configuration holds ``config``."""
    found = [
        mapper
        for mapper in client["protocolMappers"]
        if mapper["protocolMapper"] == kind and config.items() <= mapper["config"].items()
    ]
    assert len(found) == 1, f"{kind} {config}: {len(found)} mappers"
    return found[0]


def test_the_realm_is_lotse_with_self_registration(realm: Document) -> None:
    assert (realm["realm"], realm["enabled"], realm["registrationAllowed"]) == ("lotse", True, True)
    assert realm["defaultLocale"] == "de" and {"de", "en", "ar", "uk", "fa", "tr"} <= set(realm["supportedLocales"])


def test_the_portal_is_a_confidential_client_with_pkce_s256_and_no_committed_secret(portal: Document) -> None:
    assert portal["publicClient"] is False and portal["clientAuthenticatorType"] == "client-secret"
    assert portal["standardFlowEnabled"] is True
    assert portal["implicitFlowEnabled"] is False and portal["directAccessGrantsEnabled"] is False
    assert portal["attributes"]["pkce.code.challenge.method"] == "S256"
    # The secret is a placeholder Keycloak fills from its environment at import (secrets/keycloak.env).
    assert portal["secret"] == "${LOTSE_OIDC_CLIENT_SECRET}"
    assert "http://localhost:8000/signin/callback" in portal["redirectUris"]
    assert not any("*" in uri for uri in portal["redirectUris"])
    assert "http://localhost:8000/" in portal["attributes"]["post.logout.redirect.uris"].split("##")


def test_access_tokens_carry_the_audience_and_the_claims_the_services_read(portal: Document) -> None:
    audience = _mapper(portal, "oidc-audience-mapper", **{"included.custom.audience": "lotse"})
    assert audience["config"]["access.token.claim"] == "true"
    for attribute in ("tenant", "org"):
        mapper = _mapper(portal, "oidc-usermodel-attribute-mapper", **{"user.attribute": attribute})
        assert mapper["config"]["claim.name"] == attribute
        assert mapper["config"]["jsonType.label"] == "String" and mapper["config"]["multivalued"] == "false"
        assert mapper["config"]["access.token.claim"] == mapper["config"]["id.token.claim"] == "true"
    # A flat list "roles" (Keycloak's own is nested under realm_access): what lotse_runtime.auth reads.
    roles = _mapper(portal, "oidc-usermodel-realm-role-mapper", **{"claim.name": "roles"})
    assert roles["config"]["multivalued"] == "true" and roles["config"]["access.token.claim"] == "true"


def test_the_realm_has_every_role_and_new_accounts_are_volunteers(realm: Document) -> None:
    roles = {role["name"]: role for role in realm["roles"]["realm"]}
    assert {role.value for role in Role} <= set(roles)
    default = roles[realm["defaultRole"]["name"]]
    assert default["composite"] is True and Role.VOLUNTEER.value in default["composites"]["realm"]
    # Nobody becomes more than a volunteer by registering.
    assert not {Role.PLATFORM_ADMIN, Role.COORDINATOR, Role.INITIATIVE_ADMIN, Role.PARTNER} & set(
        default["composites"]["realm"]
    )


def test_only_administrators_set_an_accounts_municipality_and_organisation(realm: Document) -> None:
    (provider,) = realm["components"]["org.keycloak.userprofile.UserProfileProvider"]
    profile = json.loads(provider["config"]["kc.user.profile.config"][0])
    attributes = {attribute["name"]: attribute for attribute in profile["attributes"]}
    for name in ("tenant", "org"):
        # A person who could edit these could move into another municipality or organisation.
        assert attributes[name]["permissions"]["edit"] == ["admin"], name
    pattern = attributes["tenant"]["validations"]["pattern"]["pattern"]
    assert re.fullmatch(pattern, "musterstadt") and not re.fullmatch(pattern, "Muster Stadt")


def test_compose_runs_a_pinned_keycloak_that_imports_the_realm_and_the_services_use_it() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    keycloak = compose["services"]["keycloak"]
    image, _, tag = keycloak["image"].partition(":")
    assert image == "quay.io/keycloak/keycloak" and re.fullmatch(r"\d+\.\d+\.\d+", tag)
    assert keycloak["command"][0] == "start-dev" and "--import-realm" in keycloak["command"]
    assert "./deploy/compose/keycloak:/opt/keycloak/data/import:ro" in keycloak["volumes"]
    assert keycloak["env_file"] == "deploy/compose/secrets/keycloak.env"
    assert keycloak["ports"] == ["127.0.0.1:8080:8080"]
    issuer = f"{keycloak['environment']['KC_HOSTNAME']}/realms/lotse"
    for name in ("registry", "matching", "notifications"):
        environment = compose["services"][name]["environment"]
        assert environment["LOTSE_JWT_ISSUER"] == issuer
        assert environment["LOTSE_JWT_JWKS_URL"] == "http://keycloak:8080/realms/lotse/protocol/openid-connect/certs"
        assert environment["LOTSE_JWT_AUDIENCE"] == "lotse"
