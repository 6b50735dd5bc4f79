"""Demo data for ``lotse up --demo``: two fictional municipalities that coordinate differently,
with organisations, a few hundred volunteers and needs. Deterministic (seeded), pure, and
validated by the contract models, so the demo only ever sends what a real partner could send.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from lotse_contracts import RegisterVolunteer, ReportNeed
from lotse_contracts.events.needs import NeedCategory
from lotse_contracts.events.values import BASE_SKILLS

PROPOSAL_SLOTS = [
    ("monday", 9, 13),
    ("tuesday", 14, 19),
    ("wednesday", 9, 13),
    ("thursday", 14, 19),
    ("saturday", 10, 16),
]
FIRST_NAMES = [
    "Anna", "Jonas", "Fatma", "Lukas", "Olena", "Mehmet", "Sophie", "Yusuf", "Mia", "Reza", "Lea", "Karim",
    "Hannah", "Dmytro", "Emma", "Amira", "Paul", "Leyla", "Finn", "Natalia", "Marie", "Samir", "Ida", "Omid",
]  # fmt: skip
LANGUAGE_MIX = [
    ("de", "native", 0.75), ("en", "b2", 0.55), ("ar", "c1", 0.18), ("uk", "native", 0.12), ("ru", "c1", 0.12),
    ("fa", "native", 0.1), ("tr", "native", 0.12), ("fr", "b1", 0.1),
]  # fmt: skip


@dataclass(frozen=True)
class NeedTemplate:
    category: NeedCategory
    description: str
    skills: tuple[str, ...] = ()
    languages: tuple[tuple[str, str], ...] = ()
    certificate: str | None = None


NEED_TEMPLATES = (
    NeedTemplate(
        NeedCategory.ACCOMPANIMENT_TO_AUTHORITIES,
        "Begleitung zur Ausländerbehörde, Termin zur Verlängerung.",
        ("accompaniment",),
        (("ar", "b2"),),
    ),
    NeedTemplate(
        NeedCategory.TRANSLATION,
        "Übersetzung beim Elterngespräch in der Grundschule.",
        ("translation",),
        (("uk", "b2"),),
    ),
    NeedTemplate(
        NeedCategory.TUTORING,
        "Hausaufgabenhilfe Mathe, 7. Klasse.",
        ("tutoring",),
        (("de", "c1"),),
        "extended_police_certificate",
    ),
    NeedTemplate(
        NeedCategory.CHILDCARE,
        "Kinderbetreuung während des Deutschkurses der Eltern.",
        ("childcare",),
        (("de", "b1"),),
        "extended_police_certificate",
    ),
    NeedTemplate(
        NeedCategory.HOUSING_HELP, "Hilfe beim Aufbau von Möbeln nach dem Umzug in die eigene Wohnung.", ("handicraft",)
    ),
    NeedTemplate(NeedCategory.MOBILITY, "Fahrt zum Facharzttermin in der Kreisstadt.", ("driving",), (("fa", "b1"),)),
    NeedTemplate(NeedCategory.LEISURE, "Gemeinsames Fußballtraining am Samstag für Jugendliche.", ("sports",)),
)
# Nobody in the demo speaks Tigrinya, so this need finds nobody and is escalated.
UNFITTABLE = NeedTemplate(
    NeedCategory.TRANSLATION, "Dolmetschen beim Termin im Jobcenter (Tigrinya).", ("translation",), (("ti", "native"),)
)


@dataclass(frozen=True)
class DemoOrganisation:
    kind: str
    name: str


@dataclass(frozen=True)
class DemoPostcode:
    """A row of the tenant's postcode table: the postcode's centroid and its district."""

    postcode: str
    lat: float
    lon: float
    district: str


@dataclass(frozen=True)
class DemoTenant:
    slug: str
    name: str
    municipality_key: str
    centre: tuple[float, float]
    postcode_table: tuple[DemoPostcode, ...]
    languages: tuple[str, ...]
    coordination_email: str
    how_it_coordinates: str
    organisations: tuple[DemoOrganisation, ...]

    @property
    def postcodes(self) -> tuple[str, ...]:
        return tuple(row.postcode for row in self.postcode_table)

    @property
    def districts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(row.district for row in self.postcode_table))


DEMO_TENANTS: tuple[DemoTenant, ...] = (
    DemoTenant(
        slug="musterstadt",
        name="Stadt Musterstadt",
        municipality_key="05999001",
        centre=(51.9607, 7.6261),
        # Fictional districts on plausible centroids around the town centre.
        postcode_table=(
            DemoPostcode("48143", 51.9625, 7.6270, "Mitte"),
            DemoPostcode("48147", 51.9720, 7.6180, "Kreuzviertel"),
            DemoPostcode("48145", 51.9580, 7.6490, "Hafen"),
            DemoPostcode("48151", 51.9450, 7.6130, "Geist"),
            DemoPostcode("48149", 51.9560, 7.5990, "Aaseestadt"),
        ),
        languages=("de", "en", "ar", "uk", "fa", "tr"),
        coordination_email="ehrenamt@musterstadt.example",
        how_it_coordinates="a central coordination office in the town hall",
        organisations=(
            DemoOrganisation("coordination_office", "Koordinationsstelle Flüchtlingshilfe Musterstadt"),
            DemoOrganisation("welfare_association", "Caritasverband Musterstadt"),
            DemoOrganisation("initiative", "Willkommen in Musterstadt e. V."),
        ),
    ),
    DemoTenant(
        slug="lindenau",
        name="Gemeinde Lindenau",
        municipality_key="05999002",
        centre=(51.8420, 8.3010),
        postcode_table=(
            DemoPostcode("33378", 51.8490, 8.3000, "Rheda"),
            DemoPostcode("33397", 51.8330, 8.3160, "Wiedenbrück"),
            DemoPostcode("33442", 51.8200, 8.2750, "Lintel"),
        ),
        languages=("de", "en", "ar", "uk", "tr"),
        coordination_email="runder-tisch@lindenau.example",
        how_it_coordinates="a round table of civil-society initiatives",
        organisations=(
            DemoOrganisation("round_table", "Runder Tisch Asyl Lindenau"),
            DemoOrganisation("initiative", "Lindenauer Helferkreis"),
            DemoOrganisation("initiative", "Sprachpaten Lindenau"),
        ),
    ),
)


def _near(rng: random.Random, centre: tuple[float, float], radius_km: float) -> dict[str, float]:
    distance = radius_km * math.sqrt(rng.random())
    bearing = rng.uniform(0, 2 * math.pi)
    lat = centre[0] + (distance / 111.0) * math.cos(bearing)
    lon = centre[1] + (distance / (111.0 * math.cos(math.radians(centre[0])))) * math.sin(bearing)
    return {"lat": round(lat, 5), "lon": round(lon, 5)}


def demo_volunteers(
    tenant: DemoTenant, count: int, organisation_ids: list[str], today: date, seed: int = 7
) -> list[RegisterVolunteer]:
    rng = random.Random(f"{seed}-{tenant.slug}-volunteers")
    volunteers = []
    for number in range(count):
        first = rng.choice(FIRST_NAMES)
        languages = [{"language": code, "level": level} for code, level, share in LANGUAGE_MIX if rng.random() < share]
        if not languages:
            languages = [{"language": "de", "level": "native"}]
        slots = rng.sample(PROPOSAL_SLOTS, k=rng.randint(1, 3))
        certificates = []
        if rng.random() < 0.35:
            issued = today - timedelta(days=rng.randint(30, 1000))
            certificates.append(
                {"kind": "extended_police_certificate", "issued_on": issued.isoformat(),
                 "valid_until": (issued + timedelta(days=5 * 365)).isoformat()}
            )  # fmt: skip
        volunteers.append(
            RegisterVolunteer.model_validate(
                {
                    "external_ref": f"demo-{tenant.slug}-vol-{number:04d}",
                    "contact": {
                        "display_name": f"{first} {chr(65 + rng.randrange(26))}.",
                        "email": f"{first.lower()}.{number:04d}@{tenant.slug}.example",
                        "preferred_language": _preferred_language(languages, tenant),
                        "channels": ["email", "in_app"],
                    },
                    "skills": sorted(rng.sample(BASE_SKILLS, k=rng.randint(2, 5))),
                    "languages": languages,
                    "home_area": _home_area(rng, tenant),
                    "travel_radius_km": rng.choice([3, 5, 8, 10, 15]),
                    "certificates": certificates,
                    "organisation_id": rng.choice(organisation_ids) if organisation_ids else None,
                    "consent": {
                        "purposes": ["matching", "contact"],
                        "text_version": "2026-01",
                        "given_at": datetime.combine(today, time(9), UTC).isoformat(),
                    },
                    "consent_proof": {
                        "method": "online_form",
                        "reference": f"demo-form/{tenant.slug}-{number:04d}",
                        "recorded_at": datetime.combine(today, time(9), UTC).isoformat(),
                    },
                    "availability": {
                        "weekly_slots": [
                            {"weekday": day, "start": f"{start:02d}:00:00", "end": f"{end:02d}:00:00"}
                            for day, start, end in slots
                        ],
                        "periods": [{"start": today.isoformat(), "end": (today + timedelta(days=180)).isoformat()}],
                        "unavailable": [],
                        "max_concurrent_engagements": rng.choice([1, 2, 2, 3]),
                    },
                }
            )
        )
    return volunteers


def _home_area(rng: random.Random, tenant: DemoTenant) -> dict[str, Any]:
    """Most give a point; some only their postcode, which the registry places by the tenant's table."""
    postcode = rng.choice(tenant.postcodes)
    if rng.random() < 0.25:
        return {"postcode": postcode}
    return {"point": _near(rng, tenant.centre, 6.0), "postcode": postcode}


def _preferred_language(languages: list[dict[str, str]], tenant: DemoTenant) -> str:
    spoken = [entry["language"] for entry in languages if entry["language"] in tenant.languages]
    return "de" if "de" in spoken or not spoken else spoken[0]


def demo_needs(
    tenant: DemoTenant, count: int, organisation_ids: list[str], today: date, seed: int = 7
) -> list[ReportNeed]:
    rng = random.Random(f"{seed}-{tenant.slug}-needs")
    needs = []
    for number in range(count):
        day, start, _slot_end = rng.choice(PROPOSAL_SLOTS)
        reference = f"demo-{tenant.slug}-need-{number:04d}"
        template = NEED_TEMPLATES[number % len(NEED_TEMPLATES)]
        needs.append(_need(tenant, rng, reference, template, organisation_ids, _next(today, day), start, start + 2))
    return needs


def unfittable_need(tenant: DemoTenant, organisation_ids: list[str], today: date) -> ReportNeed:
    """A need nobody in the demo can take, so that the coordination office gets an escalation."""
    rng = random.Random(f"{tenant.slug}-unfittable")
    reference = f"demo-{tenant.slug}-need-unfittable"
    return _need(tenant, rng, reference, UNFITTABLE, organisation_ids, _next(today, "wednesday"), 9, 11)


def _need(
    tenant: DemoTenant,
    rng: random.Random,
    external_ref: str,
    template: NeedTemplate,
    organisation_ids: list[str],
    day: date,
    start_hour: int,
    end_hour: int,
) -> ReportNeed:
    local = timedelta(hours=1)  # demo times in CET
    data: dict[str, Any] = {
        "external_ref": external_ref,
        "organisation_id": rng.choice(organisation_ids),
        "category": template.category.value,
        "description": template.description,
        "required_skills": list(template.skills),
        "languages": [{"language": code, "min_level": level} for code, level in template.languages],
        "place": {"point": _near(rng, tenant.centre, 3.0), "district": rng.choice(tenant.districts)},
        "schedule": {
            "kind": "one_off",
            "start": (datetime.combine(day, time(start_hour), UTC) - local).isoformat(),
            "end": (datetime.combine(day, time(end_hour), UTC) - local).isoformat(),
        },
        "volunteers_needed": 1,
        "household_ref": f"hh-{rng.getrandbits(40):010x}",
    }
    if template.certificate:
        data["certificate_required"] = template.certificate
    return ReportNeed.model_validate(data)


def _next(today: date, weekday: str) -> date:
    names = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    ahead = (names.index(weekday) - today.weekday()) % 7 or 7
    return today + timedelta(days=ahead)
