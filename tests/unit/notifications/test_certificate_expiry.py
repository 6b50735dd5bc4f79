"""The certificate expiry messages (issue 16): the volunteer reads which certificate runs out and
when, in their language; the office reads whose, as the registry's rule lets it see them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lotse_contracts import VolunteerCertificateExpiring
from lotse_contracts.events.values import EXAMPLE_VOLUNTEER_ID
from lotse_notifications import catalogue, domain
from lotse_notifications.templates import render, sample_facts


def test_the_payload_names_the_volunteer_by_id_only() -> None:
    payload = domain.certificate_payload(VolunteerCertificateExpiring.example())
    assert payload == {
        "volunteer_id": EXAMPLE_VOLUNTEER_ID,
        "certificate": "extended_police_certificate",
        "valid_until": "2031-11-19",
        "weeks_before": 8,
    }


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("de", ["erweitertes Führungszeugnis", "19.11.2031"]),
        ("en", ["extended police certificate", "Nov 19, 2031"]),
        ("uk", ["розширена довідка про несудимість", "2031"]),
        ("tr", ["19 Kas 2031"]),
    ],
)
def test_the_volunteer_reads_which_certificate_runs_out_and_when(language: str, words: list[str]) -> None:
    rendered = render(catalogue.CERTIFICATE_EXPIRING, [language], sample_facts(catalogue.CERTIFICATE_EXPIRING))
    for word in words:
        assert word in rendered.subject and word in rendered.text, (word, rendered.subject)


def test_the_office_reads_whose_certificate_and_nothing_of_someone_erased() -> None:
    facts = sample_facts(catalogue.CERTIFICATE_EXPIRING_OFFICE)
    named = render(catalogue.CERTIFICATE_EXPIRING_OFFICE, ["de"], facts)
    assert named.subject == "Nachweis läuft ab: erweitertes Führungszeugnis von Maria"
    assert "maria@example.org" in named.text and EXAMPLE_VOLUNTEER_ID in named.text
    erased = render(catalogue.CERTIFICATE_EXPIRING_OFFICE, ["de"], replace(facts, people={}))
    assert erased.subject == "Nachweis läuft ab: erweitertes Führungszeugnis"
    assert "Maria" not in erased.text.replace("Hallo Maria", "")
