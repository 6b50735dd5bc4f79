"""Proposal rounds under random answers: nobody exceeds their limit or is double-booked, no need
takes more people than it asks for, and each need's events are numbered without gaps.

The rounds run as in the service, one `NeedWork` per change on fresh copies of the stored state
(records read back from their documents), with the in-memory index updated after each "commit";
only the database is left out.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lotse_contracts.events.matching import AnswerChannel
from lotse_matching.domain import NeedWork, new_staffing
from lotse_matching.index import TenantIndex
from lotse_matching.profiles import need_from_record, volunteer_from_document
from lotse_matching.schedule import find_overlap
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import NeedRecord, NeedStatus, Proposal, ProposalKind, ProposalStatus, StaffingState
from tests.unit.matching.population import TENANT, TIMEZONE, need_documents, populations, schedules

START = datetime(2026, 11, 25, 9, tzinfo=TIMEZONE)
SETTINGS = MatchingSettings(proposals_per_round=2, answer_seconds=3600, unstaffed_after_seconds=10**7)


@dataclass
class World:
    index: TenantIndex
    now: datetime = START
    needs: dict[str, NeedRecord] = field(default_factory=dict)
    proposals: dict[str, dict[str, Proposal]] = field(default_factory=dict)
    events: dict[str, list[Any]] = field(default_factory=dict)

    def work(self, need_id: str, *, new: bool = False) -> NeedWork:
        return NeedWork(
            record=NeedRecord.from_document(copy.deepcopy(self.needs[need_id].to_document())),
            proposals=[Proposal.from_document(p.to_document()) for p in self.proposals[need_id].values()],
            index=self.index,
            settings=SETTINGS,
            now=self.now,
            cause=None,
            is_new=new,
        )

    def commit(self, work: NeedWork) -> None:
        self.needs[work.need_id] = work.record
        self.proposals[work.need_id] = work.proposals
        self.events[work.need_id].extend(work.events)
        for effect in work.after:
            effect()
        work._refresh_open_need()


def open_proposals(world: World) -> list[tuple[str, str]]:
    # In the order they were made, not by id: proposal ids are random UUIDs, and an order that
    # changes between runs lets Hypothesis draw differently when it replays an example.
    return [
        (need_id, proposal_id)
        for need_id, proposals in world.proposals.items()
        for proposal_id, proposal in proposals.items()
        if proposal.status is ProposalStatus.OPEN
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), base=need_documents(), times=st.lists(schedules(), min_size=1, max_size=4))
def test_random_answers_never_overbook_anybody_or_any_need(
    data: st.DataObject, base: dict[str, Any], times: list[dict[str, Any]]
) -> None:
    # Needs alike but for their time, so that the same people are asked for several of them.
    needs = []
    for n, schedule in enumerate(times):
        need = copy.deepcopy(base)
        need["need_id"] = str(uuid.UUID(int=n + 1))
        need["details"]["schedule"] = schedule
        needs.append(need)
    documents = data.draw(populations(base, 16))
    for document in documents:
        document["tenant"] = TENANT
    world = World(TenantIndex(TENANT, "Europe/Berlin"))
    world.index.upsert_many(volunteer_from_document(document) for document in documents)
    for need in needs:
        need_id = need["need_id"]
        world.needs[need_id] = NeedRecord(
            tenant=need["tenant"],
            need_id=need_id,
            version=1,
            status=NeedStatus.OPEN,
            details=need["details"],
            staffing=new_staffing(need["details"], START, SETTINGS, TENANT),
        )
        world.proposals[need_id], world.events[need_id] = {}, []
        work = world.work(need_id, new=True)
        work.top_up()
        world.commit(work)

    for _ in range(data.draw(st.integers(1, 25))):
        action = data.draw(st.sampled_from(["accept", "accept", "decline", "expire", "step_back", "pick"]))
        pending = open_proposals(world)
        if action in ("accept", "decline") and pending:
            need_id, proposal_id = data.draw(st.sampled_from(pending))
            work = world.work(need_id)
            proposal = work.proposals[proposal_id]
            if action == "accept":
                work.accept(proposal, AnswerChannel.VOLUNTEER_APP)
            else:
                work.decline(proposal, AnswerChannel.VOLUNTEER_APP, None)
        elif action == "expire":
            world.now += timedelta(hours=2)
            need_id = data.draw(st.sampled_from(sorted(world.needs)))
            work = world.work(need_id)
            work.expire_overdue()
        elif action == "step_back":
            committed = sorted((n, v) for n, record in world.needs.items() for v in record.staffing.committed)
            if not committed:
                continue
            need_id, volunteer_id = data.draw(st.sampled_from(committed))
            work = world.work(need_id)
            work.step_back(volunteer_id)
        elif action == "pick" and world.index.volunteers:
            need_id = data.draw(st.sampled_from(sorted(world.needs)))
            work = world.work(need_id)
            work.pick(data.draw(st.sampled_from(sorted(world.index.volunteers))))
        else:
            continue
        world.commit(work)
        check(world)


def check(world: World) -> None:
    booked: dict[str, list[str]] = {}
    for need_id, record in world.needs.items():
        committed = record.staffing.committed
        assert len(committed) == len(set(committed)) <= record.volunteers_needed
        assert (record.staffing.state is StaffingState.STAFFED) == (len(committed) == record.volunteers_needed)
        for volunteer_id in committed:
            booked.setdefault(volunteer_id, []).append(need_id)
        versions = [event.version for event in world.events[need_id]]
        assert versions == list(range(1, len(versions) + 1))
        for event in world.events[need_id]:
            if event.type.endswith("proposal.proposed.v1"):
                assert world.index.volunteers[str(event.data.volunteer_id)].active
    for volunteer_id, need_ids in booked.items():
        volunteer = world.index.volunteers[volunteer_id]
        assert len(need_ids) <= volunteer.max_engagements, "a volunteer took more than their own limit"
        pieces = [world.index.open_needs.get(n) or _need(world, n) for n in need_ids]
        for i, first in enumerate(pieces):
            for second in pieces[i + 1 :]:
                assert find_overlap(first.pieces, second.pieces) is None, "a volunteer was booked twice at once"
        assert sorted(e.need_id for e in world.index.engagements.get(volunteer_id, ())) == sorted(need_ids)
    for proposals in world.proposals.values():
        asked = [p.volunteer_id for p in proposals.values() if p.kind is ProposalKind.PROPOSAL]
        assert len(asked) == len(set(asked)), "somebody was asked twice for the same need"


def _need(world: World, need_id: str) -> Any:
    return need_from_record(world.needs[need_id], world.index.timezone)
