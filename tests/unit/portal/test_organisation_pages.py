"""An initiative admin's pages without I/O: what the registry refuses of the organisation's details
is said at its field, in the person's language, and the volunteers' contact details the registry
gives the initiative are shown. tests/e2e/test_portal_browser.py runs them against the services."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from lotse_portal import domain, pages, signin

HOSTILE = "<script>alert(1)</script>"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("name", "name"),
        ("body.name", "name"),
        ("contact_email", "contact_email"),
        ("districts", "districts"),
        ("districts[3]", "districts"),
        ("kind", "form"),
        ("body.kind", "form"),
        ("body", "form"),
        ("name_of_something_else", "form"),
    ],
)
def test_each_field_the_registry_refuses_is_said_at_the_forms_field(path: str, field: str) -> None:
    assert domain.organisation_refusal(path)[0] == field


def test_each_refusal_says_what_is_wrong_with_that_field() -> None:
    messages = {path: domain.organisation_refusal(path)[1] for path in ("name", "contact_email", "districts[0]")}
    assert messages["name"] == domain.ORGANISATION_NAME_PROBLEM
    assert messages["contact_email"] == domain.ORGANISATION_EMAIL_PROBLEM
    assert len(set(messages.values())) == 3  # one message per field, no catch-all
    assert domain.organisation_refusal("kind")[1] != domain.organisation_refusal("body")[1]


def render(template: str, language: str = "de", **context: Any) -> str:
    common = {"user": None, "csrf": "t", "path": "/organisation", "flash": None, "is_initiative_admin": True}
    html = pages.render(language, template, {**common, **context})
    assert HOSTILE not in html
    return html


@pytest.mark.parametrize("language", ["de", "ar"])
def test_the_refused_district_is_said_next_to_its_field_in_the_persons_language(language: str) -> None:
    field, message = domain.organisation_refusal("districts[1]")
    html = render(
        "organisation_edit.html", language, values={"name": HOSTILE, "districts": "Mitte"}, errors={field: message}
    )
    assert 'id="districts-error"' in html and 'aria-invalid="true"' in html
    assert pages.translate(language, message) in html
    if language != "de":
        assert message not in html


def test_the_initiatives_page_shows_each_volunteers_e_mail_and_phone() -> None:
    volunteers = [
        {"contact": {"display_name": HOSTILE, "email": "ali@example.org", "phone": "+4915112345678"}},
        {"contact": {"display_name": "Bea", "email": "bea@example.org", "phone": None}},
    ]
    html = render(
        "organisation.html",
        organisation={"name": "Lindenau hilft"},
        volunteers=volunteers,
        more_volunteers=True,
        needs=[],
        reported=None,
        categories=domain.NEED_CATEGORIES,
        need_statuses={},
    )
    assert "ali@example.org" in html and "+4915112345678" in html and "bea@example.org" in html
    assert "Hier stehen die ersten 2 Freiwilligen Ihrer Initiative." in html


def test_an_admin_whose_account_names_no_initiative_is_told_whom_to_ask() -> None:
    html = render("error.html", "uk", problem="no_organisation")
    assert pages.translate("uk", "Ihr Konto ist mit keiner Initiative verknüpft") in html
    assert "Koordinationsstelle" not in html  # in Ukrainian, not German


def test_a_refused_token_of_an_initiative_admin_without_an_initiative_is_told_apart() -> None:
    def token(**claims: Any) -> str:
        return jwt.encode({"sub": "s", **claims}, "not the provider's key " * 2, algorithm="HS256")

    assert signin._initiative_admin_without_organisation(token(roles=["initiative-admin"]))
    assert signin._initiative_admin_without_organisation(token(roles=["initiative-admin"], org=""))
    assert not signin._initiative_admin_without_organisation(token(roles=["initiative-admin"], org="o1"))
    assert not signin._initiative_admin_without_organisation(token(roles=["volunteer"]))
    assert not signin._initiative_admin_without_organisation("not a token")
