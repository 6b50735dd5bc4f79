"""A municipality's postcode table as a CSV file: ``postcode,lat,lon,district``, one postcode a row.

Every row is checked before anything is sent, and every bad row is reported by its line number,
so that a table is loaded whole or not at all. Spreadsheets exported with German settings use
``;`` between fields and a decimal comma; both are read.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from lotse_contracts.events.values import Place

COLUMNS = ("postcode", "lat", "lon", "district")


@dataclass(frozen=True)
class PostcodeRow:
    line: int
    postcode: str
    lat: float
    lon: float
    district: str

    def as_json(self) -> dict[str, str | float]:
        return {"postcode": self.postcode, "lat": self.lat, "lon": self.lon, "district": self.district}


class PostcodeFileError(Exception):
    """What is wrong with the file, one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def read_postcodes(path: Path) -> list[PostcodeRow]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte order mark from a spreadsheet is not a column
    except (OSError, UnicodeDecodeError) as error:
        raise PostcodeFileError([f"{path}: cannot read it as UTF-8 text: {error}"]) from None
    return parse_postcodes(text)


def parse_postcodes(text: str) -> list[PostcodeRow]:
    lines = text.splitlines()
    if not lines:
        raise PostcodeFileError(["the file is empty; the first line must be: " + ",".join(COLUMNS)])
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [column.strip().lower() for column in next(reader)]
    if tuple(header) != COLUMNS:
        raise PostcodeFileError([f"line 1: the columns must be {','.join(COLUMNS)}, not {','.join(header)}"])
    rows: list[PostcodeRow] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for fields in reader:
        line = reader.line_num
        if not any(field.strip() for field in fields):
            continue
        try:
            row = _row(line, fields, decimal_comma=delimiter == ";")
        except ValueError as error:
            problems.append(f"line {line}: {error}")
            continue
        if row.postcode in first_line:
            problems.append(f"line {line}: postcode {row.postcode} is already on line {first_line[row.postcode]}")
            continue
        first_line[row.postcode] = line
        rows.append(row)
    if not rows and not problems:
        problems.append("the file has no postcodes")
    if problems:
        raise PostcodeFileError(problems)
    return rows


def _row(line: int, fields: list[str], *, decimal_comma: bool) -> PostcodeRow:
    if len(fields) != len(COLUMNS):
        raise ValueError(f"{len(fields)} fields, expected {len(COLUMNS)} ({','.join(COLUMNS)})")
    postcode, lat_text, lon_text, district = (field.strip() for field in fields)
    coordinates = {}
    for name, value in (("lat", lat_text), ("lon", lon_text)):
        try:
            coordinates[name] = float(value.replace(",", ".") if decimal_comma else value)
        except ValueError:
            raise ValueError(f"{name}: {value!r} is not a number") from None
    if not district:
        raise ValueError("district: missing")
    try:
        # The contract's own rules for a place: a five-digit postcode, coordinates in range.
        Place.model_validate({"point": coordinates, "postcode": postcode, "district": district})
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][-1])
        raise ValueError(f"{field}: {first['msg']}") from None
    return PostcodeRow(line, postcode, coordinates["lat"], coordinates["lon"], district)
