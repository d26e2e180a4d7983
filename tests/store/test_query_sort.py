"""``Store.query_entries(sort="occurred")`` on both drivers: listings by the events' own time
(``occurred_at``), ties in commit order, both directions, with filters, one or several logs,
offset walks that neither repeat nor skip; and no cursor with that order."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.ledger.helpers import PROJECT, make_ledger, prepared
from trailseal.query import EventFilter
from trailseal.store.base import Store


def _seed(store: Store) -> dict[str, dict[str, str]]:
    """Events whose times run against commit order, with ties (every sixth event shares
    one instant); returns id → what the reference filter needs."""
    ledger = make_ledger(store, max_wait=0.0)
    rng = random.Random(11)
    seen: dict[str, dict[str, str]] = {}
    try:
        for n in range(60):
            day = rng.choice([3, 1, 2]) if n % 6 else 2
            minute = 0 if n % 6 == 0 else rng.randrange(60)
            raw: dict[str, Any] = {
                "id": f"sort-{n}",
                "action": rng.choice(["invoice.paid", "user.login"]),
                "actor": {"id": rng.choice(["alice", "bob"])},
                "occurred_at": f"2026-05-0{day}T10:{minute:02d}:00Z",
            }
            organization = rng.choice(["acme", "globex"])
            ledger.append(PROJECT, organization, [prepared(raw)]).result(timeout=30)
            seen[raw["id"]] = {
                "organization": organization,
                "when": f"2026-05-0{day}T10:{minute:02d}:00.000000Z",
                "action": raw["action"],
                "actor": raw["actor"]["id"],
            }
    finally:
        ledger.close()
    return seen


def _matches(item: dict[str, str], flt: EventFilter, organizations: set[str] | None) -> bool:
    return (
        (organizations is None or item["organization"] in organizations)
        and (flt.actor_id is None or item["actor"] == flt.actor_id)
        and (flt.action is None or item["action"] == flt.action)
        and (flt.since is None or item["when"] >= flt.since)
        and (flt.until is None or item["when"] <= flt.until)
    )


def test_sort_by_occurred_at_matches_a_reference(store: Store) -> None:
    seen = _seed(store)
    commit = {
        entry.event_id: position
        for position, entry in store.query_entries(
            PROJECT, EventFilter(), log_ids=None, after=None, limit=1000
        )
    }
    assert set(commit) == set(seen)
    acme, globex = store.find_log(PROJECT, "acme"), store.find_log(PROJECT, "globex")
    assert acme is not None and globex is not None
    cases: list[tuple[EventFilter, list[str] | None, set[str] | None]] = [
        (EventFilter(), None, None),
        (EventFilter(actor_id="alice"), None, None),
        (EventFilter(action="user.login", since="2026-05-02"), None, None),
        (EventFilter(), [acme.log_id], {"acme"}),
        (EventFilter(until="2026-05-02"), [acme.log_id, globex.log_id], {"acme", "globex"}),
    ]
    for flt, log_ids, organizations in cases:
        for descending in (True, False):
            expected = sorted(
                (i for i, item in seen.items() if _matches(item, flt, organizations)),
                key=lambda i: (seen[i]["when"], commit[i]),
                reverse=descending,
            )
            full = store.query_entries(
                PROJECT,
                flt,
                log_ids=log_ids,
                after=None,
                limit=1000,
                descending=descending,
                sort="occurred",
            )
            assert [entry.event_id for _, entry in full] == expected, (flt, descending)
            assert [p for p, _ in full] == [commit[i] for i in expected]
            walked: list[str] = []
            for offset in range(0, len(expected) + 7, 7):
                page = store.query_entries(
                    PROJECT,
                    flt,
                    log_ids=log_ids,
                    after=None,
                    limit=7,
                    descending=descending,
                    offset=offset,
                    sort="occurred",
                )
                walked.extend(entry.event_id for _, entry in page)
            assert walked == expected
    tied = [i for i, item in seen.items() if item["when"] == "2026-05-02T10:00:00.000000Z"]
    assert len(tied) >= 10  # ties are there, broken by commit order above


def test_sort_by_occurred_at_takes_no_cursor(store: Store) -> None:
    with pytest.raises(ValueError, match="offset"):
        store.query_entries(
            PROJECT, EventFilter(), log_ids=None, after=5, limit=10, sort="occurred"
        )
