"""The audit trail page (pure): the search form's dates, what the services are asked, the three
services' pages merged into one list, and the page with its table (naming each entry's service),
its export links per service and each error next to its field."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from lotse_portal import pages
from lotse_portal.api.audit import AuditSearch, Found, merged
from lotse_portal.backends import Service
from lotse_runtime.audit import decode_audit_cursor
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


def entry(at: str, entry_id: str) -> dict[str, Any]:
    return {**ENTRY, "at": at, "id": entry_id, "actor": "sub-1", "resource_id": "r1"}


def test_the_services_pages_are_one_list_newest_first_and_the_next_page_starts_after_the_last_shown() -> None:
    registry = [entry("2026-12-01T10:00:03Z", "r3"), entry("2026-12-01T10:00:01.500000Z", "r1")]
    matching = [entry("2026-12-01T10:00:02Z", "m2"), entry("2026-12-01T10:00:01Z", "m1")]
    notifications = [entry("2026-12-01T10:00:01.500000Z", "n1")]
    found = {
        Service.REGISTRY: Found(registry, more=False),
        Service.MATCHING: Found(matching, more=True),
        Service.NOTIFICATIONS: Found(notifications, more=False),
    }
    shown, cursor = merged(found, limit=4)
    # By time (a whole second is written without a fraction), then by id as each service orders.
    assert [(e["service"], e["id"]) for e in shown] == [
        ("registry", "r3"),
        ("matching", "m2"),
        ("registry", "r1"),
        ("notifications", "n1"),
    ]
    assert cursor is not None
    at, last = decode_audit_cursor(cursor)
    assert (at.isoformat(), last) == ("2026-12-01T10:00:01.500000+00:00", "n1")
    everything, none_left = merged({service: replace(page, more=False) for service, page in found.items()}, 10)
    assert len(everything) == 5 and none_left is None
    _, still_more = merged({Service.MATCHING: Found(matching, more=True)}, limit=2)
    assert still_more is not None, "a service with older entries than its page holds has a next page"
    assert merged({service: Found([], more=False) for service in Service}, 50) == ([], None)


def test_the_page_shows_entries_export_links_and_errors_next_to_their_field() -> None:
    context = {**COMMON, **AUDIT_PAGES["console_audit.html"], "is_volunteer": False}
    html = pages.render("en", "console_audit.html", context)
    assert "contact.email, home_area" in html and "contact details read" in html
    assert "<td>Matching</td>" in html, "each entry names its service"
    for service in Service:
        for kind in ("csv", "json"):
            assert f'href="/console/audit.{kind}?service={service}&amp;actor=' in html
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
