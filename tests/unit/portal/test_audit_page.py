"""The audit trail page (pure): the search form's dates, what the registry is asked, and the page
with its table, its export links and each error next to its field."""

from __future__ import annotations

from dataclasses import replace

from lotse_portal import pages
from lotse_portal.api.audit import AuditSearch
from tests.unit.portal.audit_pages import AUDIT_PAGES, ENTRY
from tests.unit.portal.test_pages import COMMON, USER


def test_the_registry_is_asked_for_whole_days_with_the_end_day_included() -> None:
    search = AuditSearch(actor=" sub-1 ", resource="", since="2026-11-01", until="2026-11-30")
    assert search.errors() == {}
    assert search.params() == {"actor": "sub-1", "from": "2026-11-01", "to": "2026-12-01"}
    assert AuditSearch().params() == {}
    assert search.query() == "actor=+sub-1+&from=2026-11-01&to=2026-11-30"


def test_a_date_that_is_none_or_an_end_before_the_start_is_named_at_its_field() -> None:
    assert set(AuditSearch(since="gestern", until="2026-13-01").errors()) == {"from", "to"}
    assert AuditSearch(since="2026-12-02", until="2026-12-01").errors() == {
        "to": "Das Ende darf nicht vor dem Anfang liegen."
    }


def test_the_page_shows_entries_export_links_and_errors_next_to_their_field() -> None:
    context = {**COMMON, **AUDIT_PAGES["console_audit.html"], "is_volunteer": False}
    html = pages.render("en", "console_audit.html", context)
    assert "contact.email, home_area" in html and "contact details read" in html
    assert 'href="/console/audit.csv?actor=' in html and 'href="/console/audit.json?actor=' in html
    assert "cursor=abc" in html
    wrong = {**context, "search": AuditSearch(since="gestern"), "errors": AuditSearch(since="gestern").errors()}
    html = pages.render("de", "console_audit.html", wrong)
    field = html.index('id="from-error"')
    assert field < html.index('<input id="from"') and 'aria-describedby="from-error"' in html
    assert "/console/audit.csv" not in html  # nothing to export from a search that is not valid
    assert str(ENTRY["resource_id"]) not in html


def test_the_menu_links_the_page_for_the_officer_only() -> None:
    officer = {**COMMON, **AUDIT_PAGES["console_audit.html"], "is_volunteer": False}
    officer["user"] = replace(USER, roles=("data-protection-officer",))
    assert 'href="/console/audit" aria-current="page"' in pages.render("de", "console_audit.html", officer)
    assert 'href="/console/audit"' not in pages.render("de", "home_other.html", COMMON)
