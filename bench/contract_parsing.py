"""How much the contract validation costs per event, against plain JSON decoding."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from lotse_contracts import EVENT_TYPES, parse_event, to_bytes
from tests.support import events

ROUNDS = 20_000


def _per_second(decode: Callable[[bytes], Any], payloads: list[bytes]) -> float:
    started = time.perf_counter()
    for payload in payloads:
        decode(payload)
    return len(payloads) / (time.perf_counter() - started)


async def main() -> None:
    samples = [
        to_bytes(events.event(model, "musterstadt", _subject(model), source=events.REGISTRY))
        for model in EVENT_TYPES.values()
    ]
    payloads = [samples[i % len(samples)] for i in range(ROUNDS)]
    baseline = _per_second(json.loads, payloads)
    validated = _per_second(parse_event, payloads)
    print(f"events: {ROUNDS} over {len(samples)} event types, mean size {sum(map(len, samples)) // len(samples)} B")
    print(f"json.loads (baseline):   {baseline:>10,.0f} events/s")
    print(f"parse_event (validated): {validated:>10,.0f} events/s   ratio to baseline {validated / baseline:.2f}")


def _subject(model: Any) -> str:
    field = getattr(model, "subject_field", None)
    return str(getattr(model.example(), field)) if field else "musterstadt"
