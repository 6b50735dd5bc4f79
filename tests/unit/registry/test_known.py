"""What the registry's checks take from memory: a tenant's document for a few seconds (then it
is read again, so another replica's change is seen), organisations for good (never deleted)."""

from __future__ import annotations

from lotse_registry.store import Known


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_tenant_is_known_for_a_few_seconds_and_as_a_copy() -> None:
    clock = Clock()
    known = Known(5.0, clock)
    known.tenants.put("musterstadt", {"_id": "musterstadt", "extra_skills": ["bicycle_repair"]}, known.tenants.ticket())

    served = known.tenants.get("musterstadt")
    assert served == {"_id": "musterstadt", "extra_skills": ["bicycle_repair"]}
    assert served is not None
    served["extra_skills"].append("changed by a caller")
    assert known.tenants.get("musterstadt") == {"_id": "musterstadt", "extra_skills": ["bicycle_repair"]}

    clock.now += 5.0
    assert known.tenants.get("musterstadt") is None


def test_organisations_are_known_per_tenant_and_for_good() -> None:
    clock = Clock()
    known = Known(5.0, clock)
    known.organisations.put(("musterstadt", "org-1"), True, known.organisations.ticket())
    clock.now += 10_000
    assert known.organisations.get(("musterstadt", "org-1"))
    assert not known.organisations.get(("anderstadt", "org-1"))
