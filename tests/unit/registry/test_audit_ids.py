"""What the registry's audit entries name: Lotse's own ids only, and the volunteer or need a write
is about (``store._resource_of``, ``_audited_id``, ``_subject_of``)."""

from __future__ import annotations

import pytest

from lotse_registry.store import (
    CERTIFICATE_CHECKS,
    CONSENTS,
    NEEDS,
    ORGANISATIONS,
    PARTNER_REFS,
    VOLUNTEERS,
    _audited_id,
    _resource_of,
    _subject_of,
)

CASE_REF = "case-2026-00042"


def test_a_filter_value_is_recorded_only_if_it_is_a_lotse_id() -> None:
    assert _resource_of(CONSENTS, {"volunteer_id": "v-1"}) == "volunteer_id=v-1"
    assert _resource_of(NEEDS, {"committed": "v-1"}) == "committed=v-1"
    assert _resource_of(CERTIFICATE_CHECKS, {"_id": "c-1"}) == "c-1"
    # Anything else may be personal: its value stays out.
    assert _resource_of(PARTNER_REFS, {"external_ref": CASE_REF}) == "*"
    assert _resource_of(VOLUNTEERS, {"contact.email": "maria@example.org"}) == "*"
    assert _resource_of(PARTNER_REFS, {"_id": f"t:system:volunteer:{CASE_REF}"}) == "*"


def test_a_partner_reference_is_recorded_by_what_it_points_to() -> None:
    ref = {"_id": f"t:system:volunteer:{CASE_REF}", "external_ref": CASE_REF, "aggregate_id": "v-1"}
    assert _audited_id(PARTNER_REFS, ref) == "v-1"
    assert _subject_of(PARTNER_REFS, ref) == "v-1"
    with pytest.raises(TypeError):
        _audited_id(PARTNER_REFS, {"_id": f"t:system:volunteer:{CASE_REF}"})


def test_the_subject_is_the_volunteer_or_need_a_write_is_about() -> None:
    assert _subject_of(VOLUNTEERS, {"_id": "v-1", "organisation_id": "o-1"}) == "v-1"
    assert _subject_of(NEEDS, {"_id": "n-1"}) == "n-1"
    assert _subject_of(CONSENTS, {"_id": "k-1", "volunteer_id": "v-1"}) == "v-1"
    assert _subject_of(CERTIFICATE_CHECKS, {"_id": "c-1", "volunteer_id": "v-1"}) == "v-1"
    assert _subject_of(NEEDS, {"committed": "v-1"}) == "v-1"  # taken off the needs: about the volunteer
    assert _subject_of(ORGANISATIONS, {"_id": "o-1", "name": "Willkommen e.V."}) is None
