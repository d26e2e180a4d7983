"""Filtered queries (``Store.query_entries`` / ``count_entries``) on both drivers.

A few hundred varied events go in through the ledger (seeded: several organizations, one of
them with a retired log, actors with non-ASCII names, actions sharing prefixes, outcomes
omitted, null or set, tags, targets, metadata strings, redactions). Every filter, every
query-language string and a few hundred random filter combinations are compared with a
brute-force Python filter over what was ingested: the exact ids, in commit order, both
directions, for the whole project, one log and several logs. Both drivers must equal the
same reference, which is how full-text search is held to one meaning on both. Then cursor
pagination (pages of 7), offsets, counts, and pagination while other threads commit.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.dbfixtures import DRIVERS, StoreFactory, new_pg_database
from tests.ledger.helpers import PROJECT, make_ledger, prepared
from trailseal.core.schema import format_timestamp, parse_timestamp
from trailseal.ledger.service import Ledger
from trailseal.query import Cursor, EventFilter, format_query, parse_query
from trailseal.store.base import Store
from trailseal.store.columns import search_text
from trailseal.store.postgres import PostgresStore
from trailseal.store.sqlite import SQLiteStore

PAGE = 7
ORGS = ["acme", "globex", "initech", None]  # None: the project's default organization
ACTORS = [
    ("alice", "Alice Smith"),
    ("bob", "Bob Jones"),
    ("carol", "Carol Ümlaut"),
    ("émile", "ÉMILE Zola"),
    ("user_1", None),
    ("svc-billing", "Billing Service"),
]
ACTOR_TYPES = [None, None, "user", "agent", "system", "service", "api_key"]
ACTIONS = [
    "invoice.paid",
    "invoice.created",
    "invoice.deleted",
    "invoice_item.added",  # 'invoice_' must not match 'invoice.' (LIKE's '_' is escaped)
    "invoicex.sent",
    "user.login",
    "user.logout",
    "user.password_reset",
    "billing.invoice.sent",
    "project-x.updated",
]
OUTCOMES = ["omit", "omit", None, "success", "failure", "error"]
TAGS = ["pci", "sox", "gdpr", "hipaa", "PCI"]
TARGETS = ["t1", "t2", "t3", "xyz", "T1", "user:42"]
# No two words differ only by accents (SQLite folds diacritics, PostgreSQL does not), and
# no dotted, e-mail or negative-number words (PostgreSQL keeps those whole).
WORDS = [
    "payment", "refund", "quarterly", "report", "Zürich", "東京", "naïve", "CAFÉ", "Ωμέγα",
    "alpha", "beta", "gamma", "delta", "ledger", "audit", "export", "100", "42",
]  # fmt: skip
TIMES = [
    "2026-01-01T00:00:00Z",
    "2026-01-15T12:30:00.5+02:00",
    "2026-01-31T23:59:59.999999Z",
    "2026-02-01T00:00:00Z",
    "2026-01-31T23:30:00-02:00",  # 2026-02-01T01:30:00Z
    "2025-12-31T23:59:59.999999Z",
]


@dataclass
class Item:
    """One ingested event, as the reference filter sees it."""

    event: dict[str, Any]
    event_id: str
    organization: str
    log_id: str
    occurred_at: str
    redacted: bool = False


@dataclass
class Corpus:
    store: Store
    ledger: Ledger
    items: list[Item]  # in commit order
    logs: dict[str, list[str]]  # organization -> its log ids (live and retired)
    by_id: dict[str, Item] = field(default_factory=dict)


def _random_event(rng: random.Random, n: int) -> dict[str, Any]:
    actor_id, name = rng.choice(ACTORS)
    actor: dict[str, Any] = {"id": actor_id}
    if name is not None and rng.random() < 0.9:
        actor["name"] = name
    actor_type = rng.choice(ACTOR_TYPES)
    if actor_type is not None:
        actor["type"] = actor_type
    event: dict[str, Any] = {
        "id": f"q-{n:04d}",
        "action": rng.choice(ACTIONS),
        "actor": actor,
        "occurred_at": rng.choice(TIMES)
        if rng.random() < 0.4
        else f"2026-01-{rng.randint(1, 31):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
        f":{rng.randint(0, 59):02d}.{rng.randint(0, 999999):06d}Z",
        "message": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))),
    }
    outcome = rng.choice(OUTCOMES)
    if outcome != "omit":
        event["outcome"] = outcome
    if rng.random() < 0.6:
        event["resource"] = {"type": rng.choice(["invoice", "user"]),
                             "id": f"inv_{rng.randint(1, 5)}"}  # fmt: skip
    if rng.random() < 0.5:
        event["targets"] = [{"type": "t", "id": t} for t in rng.sample(TARGETS, rng.randint(1, 3))]
    if rng.random() < 0.6:
        event["tags"] = rng.sample(TAGS, rng.randint(1, 3))
    if rng.random() < 0.5:
        event["metadata"] = {
            "note": " ".join(rng.choice(WORDS) for _ in range(2)),
            "count": rng.randint(0, 500),
            "nested": {"k": rng.choice(WORDS)},
        }
    return event


def _ingest(store: Store, seed: int = 20261123) -> Corpus:
    rng = random.Random(seed)
    ledger = make_ledger(store)
    items: list[Item] = []
    logs: dict[str, list[str]] = {}
    n = 0
    for batch_number in range(45):
        if batch_number == 25:  # globex's log is retired; its next event opens a new log
            assert ledger.retire_organization(PROJECT, "globex")
        organization = rng.choice(ORGS)
        raws = [_random_event(rng, n + i) for i in range(rng.randint(1, 12))]
        n += len(raws)
        results = ledger.append(PROJECT, organization, [prepared(r) for r in raws]).result()
        for raw, result in zip(raws, results, strict=True):
            org = organization or "default"
            if result.log_id not in logs.setdefault(org, []):
                logs[org].append(result.log_id)
            occurred = format_timestamp(parse_timestamp(raw["occurred_at"], field=""))
            items.append(Item(raw, raw["id"], org, result.log_id, occurred))
    corpus = Corpus(store, ledger, items, logs, {i.event_id: i for i in items})
    for item in rng.sample(items, 10):
        assert ledger.redact(PROJECT, item.event_id)
        item.redacted = True
    assert len(logs["globex"]) == 2
    return corpus


@pytest.fixture(scope="module", params=DRIVERS)
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Corpus]:  # fmt: skip
    store: Store
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("query") / "trailseal.db"
        store = SQLiteStore(path)
    else:
        store = PostgresStore(new_pg_database(request.getfixturevalue("pg_server")), max_size=4)
    store.migrate()
    built = _ingest(store)
    yield built
    built.ledger.close()
    store.close()


# -- the reference ----------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _contains_run(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    width = len(needle)
    return any(list(haystack[i : i + width]) == list(needle)
               for i in range(len(haystack) - width + 1))  # fmt: skip


def matches(flt: EventFilter, item: Item) -> bool:
    """The documented rules of trailseal.query, in plain Python."""
    ev = item.event
    actor = ev["actor"]
    resource = ev.get("resource") or {}
    checks = [
        flt.actor_id is None or actor["id"] == flt.actor_id,
        flt.actor_type is None or (actor.get("type") or "user") == flt.actor_type,
        flt.action is None or ev["action"] == flt.action,
        flt.action_prefix is None or ev["action"].startswith(flt.action_prefix),
        flt.action_contains is None or flt.action_contains.lower() in ev["action"].lower(),
        flt.resource_type is None or resource.get("type") == flt.resource_type,
        flt.resource_id is None or resource.get("id") == flt.resource_id,
        flt.outcome is None or (ev.get("outcome") or "success") == flt.outcome,
        flt.since is None or item.occurred_at >= flt.since,
        flt.until is None or item.occurred_at <= flt.until,
    ]
    if not all(checks):
        return False
    # What redaction erases: names, targets, tags and the searchable text.
    name = None if item.redacted else actor.get("name")
    targets = [] if item.redacted else [t["id"] for t in ev.get("targets") or []]
    tags = set() if item.redacted else set(ev.get("tags") or [])
    if flt.actor_name is not None and (name is None or flt.actor_name.lower()
                                       not in name.lower()):  # fmt: skip
        return False
    if flt.target_id is not None and flt.target_id not in targets:
        return False
    if not set(flt.tags) <= tags:
        return False
    if flt.text:
        if item.redacted:
            return False
        body = _words(search_text(ev))
        return all(_contains_run(body, _words(term)) for term in flt.text)
    return True


def expected(corpus: Corpus, flt: EventFilter, log_ids: Sequence[str] | None,
             descending: bool) -> list[str]:  # fmt: skip
    ids = [i.event_id for i in corpus.items
           if (log_ids is None or i.log_id in log_ids) and matches(flt, i)]  # fmt: skip
    return ids[::-1] if descending else ids


def listed(corpus: Corpus, flt: EventFilter, log_ids: Sequence[str] | None,
           descending: bool, **kwargs: Any) -> list[str]:  # fmt: skip
    rows = corpus.store.query_entries(PROJECT, flt, log_ids=log_ids, descending=descending,
                                      **{"after": None, "limit": 10_000, **kwargs})  # fmt: skip
    positions = [p for p, _ in rows]
    assert positions == sorted(positions, reverse=descending)
    assert len(set(positions)) == len(positions)
    for _, entry in rows:
        assert (entry.entry is None) == corpus.by_id[entry.event_id].redacted
    return [e.event_id for _, e in rows]


def scopes(corpus: Corpus) -> list[list[str] | None]:
    """The whole project, one live log, and an organization with a retired log too."""
    return [None, corpus.logs["acme"], corpus.logs["globex"], corpus.logs["globex"][:1]]


def check(corpus: Corpus, flt: EventFilter) -> int:
    """The filter lists exactly the reference ids, in order, in every scope and direction,
    and counts them; returns how many the whole project holds."""
    for log_ids in scopes(corpus):
        for descending in (True, False):
            want = expected(corpus, flt, log_ids, descending)
            got = listed(corpus, flt, log_ids, descending)
            assert got == want, (format_query(flt), log_ids, descending)
        count = corpus.store.count_entries(PROJECT, flt, log_ids=log_ids)
        assert count == len(want), format_query(flt)
    return len(expected(corpus, flt, None, True))


# -- every filter against the reference ---------------------------------------------------------

SINGLE_FILTERS = [
    EventFilter(),
    EventFilter(actor_id="alice"),
    EventFilter(actor_id="émile"),
    EventFilter(actor_id="ALICE"),  # exact: no match
    EventFilter(actor_type="user"),  # absent type reads as user
    EventFilter(actor_type="agent"),
    EventFilter(actor_type="api_key"),
    EventFilter(actor_name="smith"),
    EventFilter(actor_name="ümlaut"),  # non-ASCII, case-insensitive
    EventFilter(actor_name="émile"),
    EventFilter(actor_name="ZOLA"),
    EventFilter(actor_name="e"),
    EventFilter(action="invoice.paid"),
    EventFilter(action="Invoice.paid"),
    EventFilter(action_prefix="invoice."),
    EventFilter(action_prefix="invoice_"),
    EventFilter(action_prefix="invoice"),
    EventFilter(action_prefix="user.pass"),
    EventFilter(action_prefix="project-x."),
    EventFilter(action_contains="INVOICE"),
    EventFilter(action_contains="_"),
    EventFilter(action_contains="."),
    EventFilter(action_contains="sent"),
    EventFilter(resource_type="invoice"),
    EventFilter(resource_id="inv_3"),
    EventFilter(target_id="t1"),
    EventFilter(target_id="T1"),
    EventFilter(target_id="user:42"),
    EventFilter(target_id="t"),  # a token, not a substring
    EventFilter(outcome="success"),  # omitted and null read as success
    EventFilter(outcome="failure"),
    EventFilter(outcome="error"),
    EventFilter(since="2026-02-01"),
    EventFilter(until="2026-01-31"),  # a bare date includes the whole day
    EventFilter(since="2026-01-31T23:59:59.999999Z", until="2026-02-01T00:00:00Z"),
    EventFilter(since="2026-01-15T12:30:00.5+02:00", until="2026-01-15T10:30:00.5Z"),
    EventFilter(until="2025-12-31"),
    EventFilter(tags=("pci",)),
    EventFilter(tags=("PCI",)),
    EventFilter(tags=("pci", "sox")),
    EventFilter(tags=("pci", "sox", "gdpr", "hipaa")),
]

TEXT_TERMS = [
    "payment", "REFUND", "zürich", "ZÜRICH", "東京", "naïve", "café", "CAFÉ", "ωμέγα", "Ωμέγα",
    "quarterly report", "report quarterly", "alice", "Alice Smith", "smith", "invoice.paid",
    "invoice paid", "paid", "inv_3", "item", "x", "project-x", "42", "100", "billing service",
    "nonexistentword", "password reset", "user_1",
    # Full-text syntax in user text is only ever text.
    'payment" OR "refund', "NEAR(payment refund)", "payment*", "-refund", "payment AND refund",
    "payment OR refund", "col:payment", "^payment", "(payment)", "'payment'", "payment & refund",
    "!payment", "payment:*", "payment <-> refund", '"', "payment NOT refund",
]  # fmt: skip


@pytest.mark.parametrize("flt", SINGLE_FILTERS, ids=lambda f: format_query(f) or "all")
def test_each_filter_matches_the_reference(corpus: Corpus, flt: EventFilter) -> None:
    check(corpus, flt)


def test_full_text_terms_match_the_reference(corpus: Corpus) -> None:
    hits = {}
    for term in TEXT_TERMS:
        if not _WORD.search(term):
            continue  # rejected by EventFilter (no letters or digits)
        hits[term] = check(corpus, EventFilter(text=(term,)))
    # The data really exercise matching (and case/phrase rules are not vacuous).
    assert hits["payment"] > 0 and hits["nonexistentword"] == 0
    assert hits["zürich"] == hits["ZÜRICH"] > 0
    assert hits["café"] == hits["CAFÉ"] > 0
    # A phrase is its words adjacent and in order, not merely all present.
    first, second = next(
        words[:2]
        for item in corpus.items
        if not item.redacted and len(set(words := item.event["message"].split()[:2])) == 2
    )
    phrase = check(corpus, EventFilter(text=(f"{first} {second}",)))
    both = check(corpus, EventFilter(text=(first, second)))
    assert 0 < phrase < both
    assert hits["invoice.paid"] == hits["invoice paid"] > 0
    assert hits["x"] > 0
    check(corpus, EventFilter(text=("payment", "refund")))
    check(corpus, EventFilter(text=("alpha", "東京", "42")))


def test_filters_combine(corpus: Corpus) -> None:
    check(corpus, EventFilter(actor_id="alice", action_prefix="invoice.", since="2026-01-10",
                              until="2026-01-31"))  # fmt: skip
    check(corpus, EventFilter(actor_id="bob", text=("payment",)))
    check(corpus, EventFilter(outcome="success", tags=("pci",), action_contains="invoice"))
    check(corpus, EventFilter(actor_type="user", actor_name="a", target_id="t2", text=("audit",)))


QUERIES = [
    "actor:alice action:invoice.* outcome:failure",
    'actor_name:"alice smith" payment',
    "action:*invoice* tag:pci tag:sox",
    "resource:invoice/inv_2 since:2026-01-10 until:2026-01-20",
    "resource:inv_1 target:xyz",
    "outcome:success actor_type:user",
    '"quarterly report" -refund',
    "org:acme action:user.*",
    "ZÜRICH 東京",
    "since:2026-01-31 until:2026-01-31",
    "action:invoice_* audit",
]


@pytest.mark.parametrize("q", QUERIES)
def test_query_language_matches_the_reference(corpus: Corpus, q: str) -> None:
    flt = parse_query(q)
    assert parse_query(format_query(flt)) == flt
    check(corpus, flt)


def test_random_combinations_match_the_reference(corpus: Corpus) -> None:
    rng = random.Random(7)
    items = corpus.items
    pickers: list[Any] = [
        lambda: {"actor_id": rng.choice(items).event["actor"]["id"]},
        lambda: {"actor_type": rng.choice(["user", "agent", "system", "service", "api_key"])},
        lambda: {"actor_name": rng.choice(["a", "SMITH", "ümlaut", "service", "zo"])},
        lambda: {"action": rng.choice(ACTIONS)},
        lambda: {"action_prefix": rng.choice(["invoice", "invoice.", "user.", "b", "invoice_"])},
        lambda: {"action_contains": rng.choice(["in", "PAID", "_", "x."])},
        lambda: {"resource_type": rng.choice(["invoice", "user"])},
        lambda: {"resource_id": f"inv_{rng.randint(1, 5)}"},
        lambda: {"target_id": rng.choice(TARGETS)},
        lambda: {"outcome": rng.choice(["success", "failure", "error"])},
        lambda: {"since": rng.choice(items).occurred_at},
        lambda: {"until": rng.choice(items).occurred_at},
        lambda: {"tags": tuple(rng.sample(TAGS, rng.randint(1, 2)))},
        lambda: {"text": (rng.choice(WORDS),)},
    ]
    tried = nonempty = 0
    while tried < 120:
        fields: dict[str, Any] = {}
        for pick in rng.sample(pickers, rng.randint(2, 3)):
            fields.update(pick())
        if fields.get("since", "") > fields.get("until", "\uffff"):
            fields["since"], fields["until"] = fields["until"], fields["since"]
        flt = EventFilter(**fields)
        tried += 1
        nonempty += check(corpus, flt) > 0
    assert nonempty > 30  # the combinations are not all vacuous


def test_redacted_entries_are_listed(corpus: Corpus) -> None:
    redacted = [i for i in corpus.items if i.redacted]
    actor = redacted[0].event["actor"]["id"]
    rows = corpus.store.query_entries(PROJECT, EventFilter(actor_id=actor), log_ids=None,
                                      after=None, limit=1000)  # fmt: skip
    erased = [e for _, e in rows if e.entry is None]
    assert redacted[0].event_id in {e.event_id for e in erased}
    assert all(e.leaf_hash for e in erased)


# -- cursors, offsets ---------------------------------------------------------------------------

WALK_FILTERS = [
    EventFilter(),
    EventFilter(actor_id="alice"),
    EventFilter(text=("payment",)),
    EventFilter(action_prefix="invoice.", outcome="success"),
]


def walk(corpus: Corpus, flt: EventFilter, log_ids: Sequence[str] | None,
         descending: bool) -> list[str]:  # fmt: skip
    """Every page of PAGE entries, each request resuming from the last page's cursor
    (encoded and decoded as a client would pass it)."""
    seen: list[str] = []
    token: str | None = None
    while True:
        after = None if token is None else Cursor.decode(token).resume(flt, descending=descending)
        rows = corpus.store.query_entries(PROJECT, flt, log_ids=log_ids, after=after, limit=PAGE,
                                          descending=descending)  # fmt: skip
        assert len(rows) <= PAGE
        seen.extend(e.event_id for _, e in rows)
        if len(rows) < PAGE:
            return seen
        token = Cursor.after(rows[-1][0], flt, descending=descending).encode()


@pytest.mark.parametrize("flt", WALK_FILTERS, ids=lambda f: format_query(f) or "all")
def test_cursor_pagination_visits_everything_once(corpus: Corpus, flt: EventFilter) -> None:
    for log_ids in scopes(corpus):
        for descending in (True, False):
            pages = walk(corpus, flt, log_ids, descending)
            assert pages == expected(corpus, flt, log_ids, descending)
            assert len(pages) == len(set(pages))


def test_offsets(corpus: Corpus) -> None:
    for flt in WALK_FILTERS:
        for log_ids in (None, corpus.logs["globex"]):
            for descending in (True, False):
                full = expected(corpus, flt, log_ids, descending)
                for offset in range(0, len(full) + PAGE, 11):
                    got = listed(corpus, flt, log_ids, descending, limit=PAGE, offset=offset)
                    assert got == full[offset : offset + PAGE]
    # An offset counts from the cursor.
    full = expected(corpus, EventFilter(), None, True)
    first = corpus.store.query_entries(PROJECT, EventFilter(), log_ids=None, after=None,
                                       limit=PAGE)  # fmt: skip
    got = listed(corpus, EventFilter(), None, True, after=first[-1][0], limit=PAGE, offset=3)
    assert got == full[PAGE + 3 : 2 * PAGE + 3]


def test_empty_scope_and_zero_limit(corpus: Corpus) -> None:
    assert corpus.store.query_entries(PROJECT, EventFilter(), log_ids=[], after=None,
                                      limit=10) == []  # fmt: skip
    assert corpus.store.count_entries(PROJECT, EventFilter(), log_ids=[]) == 0
    assert corpus.store.query_entries(PROJECT, EventFilter(), log_ids=None, after=None,
                                      limit=0) == []  # fmt: skip
    assert corpus.store.query_entries("no-such-project", EventFilter(), log_ids=None,
                                      after=None, limit=10) == []  # fmt: skip
    assert corpus.store.query_entries(PROJECT, EventFilter(), log_ids=["nolog"], after=None,
                                      limit=10) == []  # fmt: skip


# -- pagination under concurrent ingest ----------------------------------------------------------


def test_pagination_never_skips_or_repeats_under_concurrent_ingest(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    ledger = make_ledger(store)
    rng = random.Random(3)
    counter = iter(range(10**6))
    lock = threading.Lock()

    def append(organization: str, count: int) -> None:
        with lock:
            raws = [{"id": f"c-{next(counter)}", "action": "job.run",
                     "actor": {"id": f"worker-{organization}"},
                     "message": "payment run"} for _ in range(count)]  # fmt: skip
        ledger.append(PROJECT, organization, [prepared(r) for r in raws]).result()

    for n in range(12):
        append(f"org{n % 4}", rng.randint(1, 6))
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(organization: str) -> None:
        local = random.Random(organization)
        try:
            while not stop.is_set():
                append(organization, local.randint(1, 5))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"org{n}",)) for n in range(4)]
    flt_all, flt_text = EventFilter(), EventFilter(text=("payment",))
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.05)
        # Newest first: the first page fixes the top; everything older than it, committed
        # before the walk began, must come exactly once, in commit order.
        walks_desc = {}
        for flt in (flt_all, flt_text):
            first = store.query_entries(PROJECT, flt, log_ids=None, after=None, limit=1)
            top = first[0][0]
            seen = [first[0][1].event_id]
            after: int | None = top
            while after is not None:
                rows = store.query_entries(PROJECT, flt, log_ids=None, after=after, limit=PAGE)
                seen.extend(e.event_id for _, e in rows)
                after = rows[-1][0] if len(rows) == PAGE else None
                time.sleep(0.002)
            walks_desc[flt] = (top, seen)
        # Oldest first while commits keep landing, then on until caught up.
        walk_asc: list[tuple[int, str]] = []
        after = None
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            rows = store.query_entries(PROJECT, flt_all, log_ids=None, after=after, limit=PAGE,
                                       descending=False)  # fmt: skip
            walk_asc.extend((p, e.event_id) for p, e in rows)
            after = rows[-1][0] if rows else after
            time.sleep(0.003)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    while True:
        rows = store.query_entries(PROJECT, flt_all, log_ids=None, after=after, limit=PAGE,
                                   descending=False)  # fmt: skip
        if not rows:
            break
        walk_asc.extend((p, e.event_id) for p, e in rows)
        after = rows[-1][0]
    final = store.query_entries(PROJECT, flt_all, log_ids=None, after=None, limit=10**6,
                                descending=False)  # fmt: skip
    assert len({log for _, e in final for log in [e.log_id]}) == 4
    assert walk_asc == [(p, e.event_id) for p, e in final]  # nothing skipped or repeated
    assert final[-1][0] > max(top for top, _ in walks_desc.values())  # commits did interleave
    for top, seen in walks_desc.values():  # every event here says "payment"
        assert seen == [e.event_id for p, e in reversed(final) if p <= top]
    # Within each log, commit order is seq order.
    for log_id in {e.log_id for _, e in final}:
        seqs = [e.seq for _, e in final if e.log_id == log_id]
        assert seqs == sorted(seqs) == list(range(len(seqs)))
    ledger.close()


# -- access paths ---------------------------------------------------------------------------------

SQLITE_PATHS = [
    # (filter, scope, after, what the plan must use)
    (EventFilter(), None, None, "SCAN e"),
    (EventFilter(outcome="failure", tags=("pci",)), None, 10, "USING INTEGER PRIMARY KEY"),
    (parse_query("actor:a action:invoice.* since:2026-01-01 until:2026-01-31"), None, 10,
     "COVERING INDEX entries_actor_commit"),
    (EventFilter(actor_id="a"), None, None, "COVERING INDEX entries_actor_commit"),
    (EventFilter(text=("payment",), actor_id="a"), None, 10, "VIRTUAL TABLE"),
    (EventFilter(), ["l1"], 10, "INDEX entries_log_seq"),
    (EventFilter(action="x.y"), ["l1"], None, "INDEX entries_log_seq"),
]  # fmt: skip


@pytest.mark.parametrize(("flt", "log_ids", "after", "uses"), SQLITE_PATHS)
def test_sqlite_access_paths(
    tmp_path: Path, flt: EventFilter, log_ids: list[str] | None, after: int | None, uses: str
) -> None:
    """Each main shape walks an index (or the table) in commit order: no sort of the whole
    result, so a page costs about a page. (PostgreSQL picks its plan from statistics; the
    same shapes were checked there with EXPLAIN ANALYZE, see the migration comments.)"""
    from trailseal.store.sqlite import _sqlite_plan

    store = SQLiteStore(tmp_path / "plans.db")
    store.migrate()
    plan = _sqlite_plan(PROJECT, flt, log_ids, after, True)
    conn = store._query_conn()
    steps = [
        row[3]
        for row in conn.execute(
            f"EXPLAIN QUERY PLAN SELECT {plan.position} FROM {plan.source} WHERE {plan.where}"
            f" ORDER BY {plan.order} DESC LIMIT 50",
            plan.params,
        )
    ]
    assert uses in steps[0], steps
    assert not any("TEMP B-TREE" in step for step in steps), steps
    store.close()
