"""The services' memory of rarely changing data (``lotse_runtime.memo``): only committed values,
none that a change made here has replaced, none older than ``seconds``."""

from __future__ import annotations

import copy
from typing import Any, cast

from lotse_runtime.memo import Memo
from lotse_runtime.unit_of_work import Transaction


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Session:
    """Stands in for a MongoDB session: the memo only tells sessions apart."""


def transaction(session: Session | None = None) -> Transaction:
    return Transaction(cast(Any, None), cast(Any, session or Session()))


def commit(*transactions: Transaction) -> None:
    for each in transactions:
        for callback in each.callbacks:
            callback()


def test_an_entry_is_served_until_it_expires_and_then_read_again() -> None:
    clock = Clock()
    memo: Memo[str, list[str]] = Memo(5.0, clock)
    memo.put("musterstadt", [], memo.ticket())

    clock.now += 4.9
    assert memo.get("musterstadt") == []  # an empty list is a value, not a miss
    clock.now += 0.1
    assert memo.get("musterstadt") is None


def test_a_copying_memo_hands_out_copies() -> None:
    memo: Memo[str, dict[str, list[str]]] = Memo(5.0, Clock(), copy=copy.deepcopy)
    stored = {"extra_skills": ["bicycle_repair"]}
    memo.put("musterstadt", stored, memo.ticket())
    stored["extra_skills"].append("changed by the reader")
    served = memo.get("musterstadt")
    assert served == {"extra_skills": ["bicycle_repair"]}
    assert served is not None
    served["extra_skills"].append("changed by a caller")
    assert memo.get("musterstadt") == {"extra_skills": ["bicycle_repair"]}


def test_a_read_begun_before_a_change_does_not_put_the_old_value_back() -> None:
    memo: Memo[str, str] = Memo(5.0, Clock())
    ticket = memo.ticket()  # a reader starts and reads "v1" ...
    memo.forget("musterstadt")  # ... a change commits and forgets the key ...
    assert not memo.put("musterstadt", "v1", ticket)  # ... before the reader stores what it read
    assert memo.get("musterstadt") is None
    assert memo.put("musterstadt", "v2", memo.ticket())  # a read begun after the change is kept
    assert memo.get("musterstadt") == "v2"


def test_a_transaction_that_changes_a_key_never_takes_it_from_memory() -> None:
    memo: Memo[str, str] = Memo(5.0, Clock())
    changing = transaction()
    memo.changing("musterstadt", changing)  # v2 written, not committed
    # Meanwhile a reader outside the transaction reads the committed v1 and keeps it.
    assert memo.put("musterstadt", "v1", memo.ticket())

    assert memo.get("musterstadt", changing) is None  # the next event of the batch reads v2 itself
    memo.remember("musterstadt", "v2", memo.ticket(), changing)
    assert memo.get("musterstadt") == "v1"  # others see what is committed
    commit(changing)
    assert memo.get("musterstadt") is None  # forgotten once v2 is committed


def test_a_read_inside_a_transaction_is_kept_only_once_it_commits() -> None:
    memo: Memo[str, str] = Memo(5.0, Clock())
    aborted, committed = transaction(), transaction()
    memo.remember("musterstadt", "seen in the transaction", memo.ticket(), aborted)
    memo.remember("anderstadt", "seen in the transaction", memo.ticket(), committed)
    assert memo.get("musterstadt") is None and memo.get("anderstadt") is None
    commit(committed)  # the aborted one's callbacks never run
    assert memo.get("musterstadt") is None
    assert memo.get("anderstadt") == "seen in the transaction"


def test_a_transactions_read_is_not_kept_if_the_key_changed_since_it_began() -> None:
    memo: Memo[str, str] = Memo(5.0, Clock())
    reading = transaction()  # its snapshot is older than ...
    memo.forget("musterstadt")  # ... a change committed meanwhile (set_portal_settings)
    memo.remember("musterstadt", "v1 from the snapshot", memo.ticket(), reading)
    commit(reading)
    assert memo.get("musterstadt") is None
