"""Run every benchmark: `make bench` (or `uv run python -m bench [name ...]`)."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile

from bench import consumer_pipeline, contract_parsing, end_to_end, faults, matching_candidates

BENCHMARKS = {
    "contract_parsing": contract_parsing.main,
    "consumer_pipeline": consumer_pipeline.main,
    "matching_candidates": matching_candidates.main,
    "end_to_end": end_to_end.main,
    "faults": faults.main,
}


def main(names: list[str]) -> None:
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    # As the tests do: development mode, its generated secrets in a folder of this run only.
    with tempfile.TemporaryDirectory(prefix="lotse-bench-home-") as home:
        os.environ.update({"LOTSE_ENV": "development", "LOTSE_HOME": home})
        for name in names or list(BENCHMARKS):
            print(f"== {name}", flush=True)
            asyncio.run(BENCHMARKS[name]())


if __name__ == "__main__":
    main(sys.argv[1:])
