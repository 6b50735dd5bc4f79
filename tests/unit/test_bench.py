"""The arithmetic of the benchmarks (bench/): what they print must be what they measured."""

from __future__ import annotations

import pytest

from bench.end_to_end import TARGETS, _per_need, percentile
from bench.faults import plan_for
from bench.matching_replicas import federal_state, replica_of
from lotse_matching.ownership import partition_of
from tests.e2e.fault_stream import POISON_REFS


def test_percentiles_are_nearest_rank_and_p50_the_median() -> None:
    latencies = [float(n) for n in range(1, 101)]  # 1 .. 100
    assert percentile(latencies, 0.5) == 50.5
    assert percentile(latencies, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile([], 0.5) != percentile([], 0.5)  # nan: no figure, not a made-up one


def test_round_trips_and_transactions_per_need_are_the_counters_growth_divided_by_the_needs() -> None:
    before = {"registry": {"find": 10.0, "commitTransaction": 2.0}, "matching": {}, "notifications": {"find": 1.0}}
    after = {
        "registry": {"find": 30.0, "commitTransaction": 12.0, "insert": 20.0},
        "matching": {"update": 5.0},
        "notifications": {"find": 1.0},
    }
    counted = _per_need(before, after, needs=10)
    assert counted["registry"].round_trips == pytest.approx(5.0)  # (20 + 10 + 20) / 10
    assert counted["registry"].transactions == pytest.approx(1.0)
    assert counted["registry"].by_command == {"find": 2.0, "commitTransaction": 1.0, "insert": 2.0}
    assert counted["matching"].round_trips == pytest.approx(0.5)
    assert counted["notifications"].round_trips == 0.0 and counted["notifications"].by_command == {}


def test_targets_say_met_on_the_right_side_of_their_limit() -> None:
    assert TARGETS["throughput_ratio_bare"].met(0.5) and not TARGETS["throughput_ratio_bare"].met(0.49)
    assert TARGETS["p50"].met(1.0) and not TARGETS["p50"].met(1.01)
    assert TARGETS["round_trips_per_need"].met(20) and not TARGETS["round_trips_per_need"].met(20.5)


@pytest.mark.parametrize("events", [200, 1_000, 10_000])
def test_the_fault_plan_sends_the_events_asked_for(events: int) -> None:
    plan = plan_for(events)
    assert plan.needs + plan.replayed + len(POISON_REFS) + plan.to_staff == events
    assert plan.rounds == 2 and plan.volunteers >= plan.to_staff / 2


def test_the_federal_state_has_its_volunteers_in_towns_that_shrink_with_their_rank() -> None:
    towns = federal_state(400, 1_000_000)

    assert len(towns) == 400 and sum(town.volunteers for town in towns) == 1_000_000
    sizes = [town.volunteers for town in towns]
    assert sizes == sorted(sizes, reverse=True)
    assert 140_000 < sizes[0] < 160_000 and sizes[-1] < 500, "a few large towns, many small"
    assert federal_state(400, 1_000_000) == towns, "the same state for the same seed"


def test_each_town_is_held_by_the_replica_of_its_partition() -> None:
    towns = federal_state(400, 1_000_000)
    held = {replica_of(town) for town in towns}

    assert held == {0, 1, 2}
    for town in towns:
        assert replica_of(town) == partition_of(town.slug, 12) // 4
