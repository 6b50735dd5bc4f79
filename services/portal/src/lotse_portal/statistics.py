"""The statistics page and its CSV files (pure): the registry's and matching's figures (confirmed
hours included) as charts, each with its table, and each chart as a CSV download.

The services withhold every count below five (``null``); the page says "fewer than 5" in the
person's language and the CSV ``< 5``, and a withheld value has no bar. Bars are as long as their
value's share of the chart's largest value, in steps of five percent (CSS classes: the portal's
content security policy allows no inline styles), and always carry their number in text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lotse_portal.domain import NEED_CATEGORIES
from lotse_runtime.i18n import N_

WITHHELD = N_("weniger als 5")
WITHHELD_CSV = "< 5"
# A time computed from fewer than five needs is not computed at all: no "fewer than 5 hours".
TOO_FEW = N_("zu wenige für eine Auswertung")
NEED_SERIES: tuple[tuple[str, str], ...] = (
    ("open", N_("offen")),
    ("staffed", N_("besetzt")),
    ("unstaffed", N_("ohne Freiwillige")),
)


RowData = tuple[str, bool, Sequence[int | float | None]]  # label, whether a message id, values
# Confirmed hours are summed only where five volunteers or more logged them: no "fewer than 5 hours".
HOURS_CHART: dict[str, Any] = {
    "decimals": 1,
    "note": N_(
        "Stunden, die Freiwillige eingetragen und die Koordination oder eine Initiative bestätigt hat, "
        "nach dem Tag, an dem geholfen wurde. Eine Zahl steht nur, wo mindestens 5 Freiwillige "
        "Stunden eingetragen haben."
    ),
    "withheld": N_("von weniger als 5 Freiwilligen"),
    "withheld_csv": "",
    "unit": N_("%(value)s Std."),
}


@dataclass(frozen=True)
class Cell:
    value: int | float | None  # None: withheld (fewer than 5)
    width: int  # the bar's length in percent of the chart's largest value, a multiple of 5

    @property
    def withheld(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class Row:
    label: str
    translate: bool  # a message id (a category), else shown as it is (a district's name)
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Fact:
    """A figure beside a chart (how many needs a time is computed from, proposals per acceptance)."""

    label: str  # message id
    value: int | float | None
    decimals: int = 0
    withheld: str = WITHHELD  # message id


@dataclass(frozen=True)
class Chart:
    """One chart and its table: rows (e.g. categories) by series (e.g. open, staffed)."""

    slug: str  # in the CSV's address and file name
    title: str  # message id
    heading: str  # message id: the table's first column
    series: tuple[tuple[str, str], ...]  # (key, message id)
    rows: tuple[Row, ...]
    decimals: int = 0
    note: str = ""  # message id: what the numbers mean
    facts: tuple[Fact, ...] = ()
    withheld: str = WITHHELD  # message id: a withheld value on the page
    withheld_csv: str = WITHHELD_CSV  # and in the CSV
    unit: str = ""  # message id with %(value)s, for the number beside a bar (the table's head names it)


def _widths(values: Sequence[int | float | None]) -> list[int]:
    largest = max((value for value in values if value is not None), default=0)
    if not largest:
        return [0 for _ in values]
    # At least one step for a value above zero, so that every shown number has a visible bar.
    return [0 if not value else max(5, round(value / largest * 20) * 5) for value in values]


def _chart(
    slug: str,
    title: str,
    heading: str,
    series: tuple[tuple[str, str], ...],
    rows: Sequence[RowData],
    **extra: Any,
) -> Chart:
    widths = iter(_widths([value for _, _, values in rows for value in values]))
    built = tuple(
        Row(label, translate, tuple(Cell(value, next(widths)) for value in values)) for label, translate, values in rows
    )
    return Chart(slug, title, heading, series, built, **extra)


def _number(value: Any) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def charts(registry: Mapping[str, Any], matching: Mapping[str, Any]) -> list[Chart]:
    """The page's charts from the registry's ``/tenants/{t}/statistics`` and matching's ``/statistics``."""
    by_category = registry.get("needs_by_category") or {}
    ordered = [c for c in NEED_CATEGORIES if c in by_category] + sorted(
        c for c in by_category if c not in NEED_CATEGORIES
    )
    category_rows: list[RowData] = [
        (NEED_CATEGORIES.get(c, str(c)), c in NEED_CATEGORIES, [_number(by_category[c].get(k)) for k, _ in NEED_SERIES])
        for c in ordered
    ]
    district_rows: list[RowData] = [
        (
            str(row.get("district") or N_("ohne Stadtteil")),
            not row.get("district"),
            [_number(row.get(k)) for k, _ in NEED_SERIES],
        )
        for row in registry.get("needs_by_district") or []
    ]
    volunteers = registry.get("volunteers") or {}
    volunteer_rows: list[RowData] = [
        (N_("registriert und aktiv"), True, [_number(volunteers.get("active"))]),
        (N_("davon gerade im Einsatz"), True, [_number(volunteers.get("engaged"))]),
        (N_("nicht mehr aktiv"), True, [_number(volunteers.get("withdrawn"))]),
    ]
    if registry.get("organisation_id") is None:  # erasures are counted for the whole municipality only
        volunteer_rows.append((N_("auf Wunsch gelöscht"), True, [_number(volunteers.get("erased"))]))
    waited = matching.get("time_to_staff") or {}
    proposals = matching.get("proposals") or {}
    hours = matching.get("hours") or {}
    month_rows: list[RowData] = [
        (str(row.get("month") or ""), False, [_number(row.get("hours"))]) for row in hours.get("by_month") or []
    ]
    hours_by_category = {str(row.get("category")): _number(row.get("hours")) for row in hours.get("by_category") or []}
    hours_category_rows: list[RowData] = [
        (NEED_CATEGORIES.get(c, c), c in NEED_CATEGORIES, [hours_by_category[c]])
        for c in [c for c in NEED_CATEGORIES if c in hours_by_category]
        + sorted(c for c in hours_by_category if c not in NEED_CATEGORIES)
    ]
    count = ((("count", N_("Anzahl"))),)
    worked = (("hours", N_("Stunden")),)
    return [
        _chart("needs-by-category", N_("Bedarfe nach Art der Hilfe"), N_("Art der Hilfe"), NEED_SERIES, category_rows),
        _chart("needs-by-district", N_("Bedarfe nach Stadtteil"), N_("Stadtteil"), NEED_SERIES, district_rows),
        _chart(
            "time-to-staff",
            N_("Zeit bis zur Besetzung"),
            N_("Kennzahl"),
            (("hours", N_("Stunden")),),
            [
                (
                    N_("Die Hälfte der Bedarfe war besetzt nach"),
                    True,
                    [_number(waited.get("median_hours"))],
                ),
                (N_("Drei von vier Bedarfen waren besetzt nach"), True, [_number(waited.get("p75_hours"))]),
                (N_("Neun von zehn Bedarfen waren besetzt nach"), True, [_number(waited.get("p90_hours"))]),
            ],
            decimals=1,
            note=N_(
                "Vom Eingang eines Bedarfs bis zur Zusage, mit der er besetzt war. "
                "Ausgewertet erst ab 5 besetzten Bedarfen."
            ),
            facts=(Fact(N_("besetzte Bedarfe"), _number(waited.get("staffed_needs"))),),
            withheld=TOO_FEW,
            withheld_csv="",
            unit=N_("%(value)s Std."),
        ),
        _chart(
            "proposals",
            N_("Vorschläge und Antworten"),
            N_("Antwort"),
            count,
            [
                (N_("Vorschläge insgesamt"), True, [_number(proposals.get("proposals"))]),
                (N_("zugesagt"), True, [_number(proposals.get("accepted"))]),
                (N_("abgelehnt"), True, [_number(proposals.get("declined"))]),
                (N_("unbeantwortet abgelaufen"), True, [_number(proposals.get("expired"))]),
                (N_("zurückgenommen (Bedarf besetzt oder abgesagt)"), True, [_number(proposals.get("withdrawn"))]),
                (N_("noch offen"), True, [_number(proposals.get("open"))]),
                (N_("selbst übernommene Bedarfe"), True, [_number(proposals.get("picks"))]),
            ],
            facts=(Fact(N_("Vorschläge je Zusage"), _number(proposals.get("proposals_per_acceptance")), 1, TOO_FEW),),
        ),
        _chart("volunteers", N_("Freiwillige"), N_("Freiwillige"), count, volunteer_rows),
        _chart(
            "hours-by-month",
            N_("Geleistete Stunden je Monat"),
            N_("Monat"),
            worked,
            month_rows,
            **HOURS_CHART,
        ),
        _chart(
            "hours-by-category",
            N_("Geleistete Stunden je Art der Hilfe"),
            N_("Art der Hilfe"),
            worked,
            hours_category_rows,
            **HOURS_CHART,
        ),
    ]


def csv_of(chart: Chart, gettext: Callable[[str], str]) -> str:
    """The chart's table as CSV (UTF-8 with a byte order mark, so that spreadsheets read umlauts):
    numbers with a dot, withheld values as ``< 5``."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([gettext(chart.heading), *(gettext(label) for _, label in chart.series)])
    for row in chart.rows:
        label = gettext(row.label) if row.translate else row.label
        writer.writerow([_cell_text(label), *(_csv_value(cell.value, chart) for cell in row.cells)])
    return out.getvalue()


def _csv_value(value: int | float | None, chart: Chart) -> str:
    decimals = chart.decimals
    if value is None:
        return chart.withheld_csv
    return f"{value:.{decimals}f}" if decimals else str(int(value))


def _cell_text(text: str) -> str:
    # A district's name comes from the tenant's table: never a formula in someone's spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
