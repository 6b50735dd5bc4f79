"""Run every benchmark: `make bench` (or `uv run python -m bench [name ...] [options]`).

uv run python -m bench end_to_end                      # 3 runs of 1,000 needs each
uv run python -m bench end_to_end --needs 200 --runs 1 # a quicker look
uv run python -m bench end_to_end --replicas 3         # three replicas of each service
uv run python -m bench end_to_end_replicas             # 1 and 3 replicas of each service, and their ratio
uv run python -m bench faults --events 2000            # the fault scenario, smaller
uv run python -m bench matching_replicas --volunteers 100000  # the federal state, smaller
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import Callable, Coroutine
from typing import Any

from bench import consumer_pipeline, contract_parsing, end_to_end, faults, matching_candidates, matching_replicas


def _benchmarks(options: argparse.Namespace) -> dict[str, Callable[[], Coroutine[Any, Any, None]]]:
    return {
        "contract_parsing": contract_parsing.main,
        "consumer_pipeline": consumer_pipeline.main,
        "matching_candidates": matching_candidates.main,
        "matching_replicas": lambda: matching_replicas.main(towns=options.towns, volunteers=options.volunteers),
        "end_to_end": lambda: end_to_end.main(
            needs=options.needs,
            runs=options.runs,
            idle_needs=options.idle_needs,
            load_share=options.load_share,
            rate=options.rate,
            replicas=options.replicas,
        ),
        "end_to_end_replicas": lambda: end_to_end.replicas_main(needs=options.replica_needs),
        "faults": lambda: faults.main(events=options.events),
    }


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Lotse's benchmarks (all without names).")
    parser.add_argument("names", nargs="*", metavar="name", help="benchmarks to run, in this order (default: all)")
    group = parser.add_argument_group("end_to_end")
    group.add_argument("--needs", type=int, default=end_to_end.NEEDS, help="partner needs per run at steady load")
    group.add_argument("--runs", type=int, default=end_to_end.RUNS, help="runs, each on a fresh platform")
    group.add_argument("--idle-needs", type=int, default=end_to_end.IDLE_NEEDS, help="needs sent one at a time")
    group.add_argument(
        "--load-share", type=float, default=end_to_end.LOAD_SHARE, help="offered load as a share of the bare pipe"
    )
    group.add_argument("--rate", type=float, default=None, help="offered load in needs/s (instead of --load-share)")
    group.add_argument("--replicas", type=int, default=1, help="replicas of each service (issue 19: compare 1 and 3)")
    parser.add_argument_group("end_to_end_replicas").add_argument(
        "--replica-needs", type=int, default=200, help="needs per run with 1 and with 3 replicas of each service"
    )
    group = parser.add_argument_group("matching_replicas")
    group.add_argument("--towns", type=int, default=matching_replicas.TOWNS, help="municipalities of the federal state")
    group.add_argument(
        "--volunteers", type=int, default=matching_replicas.VOLUNTEERS, help="volunteers of all municipalities"
    )
    parser.add_argument_group("faults").add_argument(
        "--events", type=int, default=faults.EVENTS, help="needs, replays, poison and answers in the faulty stream"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    options = parse(argv)
    benchmarks = _benchmarks(options)
    unknown = [name for name in options.names if name not in benchmarks]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(benchmarks)}")
    # As the tests do: development mode, its generated secrets in a folder of this run only.
    with tempfile.TemporaryDirectory(prefix="lotse-bench-home-") as home:
        os.environ.update({"LOTSE_ENV": "development", "LOTSE_HOME": home})
        for name in options.names or list(benchmarks):
            print(f"== {name}", flush=True)
            asyncio.run(benchmarks[name]())


if __name__ == "__main__":
    main(sys.argv[1:])
