"""Server-side verification of a log range (the ``POST /v1/verify`` self-audit).

It re-reads the stored entries and checks, page by page: each entry's bytes carry its
log's origin and its own seq; the stored leaf hash is the hash of the stored bytes; the
chain links; and finally that the range sits in the tree the latest signed checkpoint
signs (the whole log: the recomputed root; a sub-range: the inclusion proofs of its first
and last entry, with the peaks argument of :func:`~trailseal.core.verify.verify_log_range`).
The first bad entry is named. Memory stays bounded: a whole log is hashed page by page.
"""

from __future__ import annotations

from dataclasses import dataclass

from trailseal.core.hashing import ZERO_HASH, leaf_hash
from trailseal.core.merkle import CompactRange
from trailseal.core.verify import (
    RedactedLeaf,
    check_entries,
    extend_tree,
    leaf_hashes_of,
    open_log_checkpoint,
    verify_chain,
    verify_log_range,
)
from trailseal.errors import ValidationError, VerificationError
from trailseal.ledger.service import Ledger
from trailseal.store.base import LogHead

__all__ = ["RangeReport", "verify_range"]

PAGE = 5000
MAX_SUB_RANGE = 100_000  # a sub-range is checked in one piece (its proofs bind it whole)


@dataclass(frozen=True, slots=True)
class RangeReport:
    ok: bool
    start: int
    end: int
    tree_size: int
    root_hash: bytes
    checked: int
    redacted: int
    failed_item: str | None = None
    message: str | None = None


def verify_range(
    ledger: Ledger, project: str, log: LogHead, start: int, end: int | None
) -> RangeReport:
    row = ledger.checkpoint(project, log.log_id)
    if row is None:
        raise ValidationError(
            "the log has no checkpoint yet", field="/organization_id", code="empty_log"
        )
    end = row.size if end is None else end
    if not 0 <= start < end <= row.size:
        raise ValidationError(
            f"need 0 <= from < to <= {row.size} (the latest checkpoint's size)",
            field="/to",
            code="out_of_range",
        )
    whole = start == 0 and end == row.size
    if not whole and end - start > MAX_SUB_RANGE:
        raise ValidationError(
            f"a sub-range is verified in one piece of at most {MAX_SUB_RANGE} entries; "
            "page through it, or verify the whole log",
            field="/to",
            code="too_large",
        )
    checked = redacted = 0
    try:
        signed = open_log_checkpoint(row.note, ledger.verifier_key(project, log), origin=log.origin)
        previous = ZERO_HASH
        if start > 0:
            before = ledger.store.get_entry(project, log.log_id, start - 1)
            if before is None:
                raise VerificationError(
                    "the entry before the range is missing", item=f"entry {start - 1}"
                )
            previous = before.chain_hash
        range_prev = previous
        tree = CompactRange.empty()
        items_all: list[bytes | RedactedLeaf] = []
        heads_all: list[bytes] = []
        position = start
        while position < end:
            page = list(
                ledger.store.iter_entries(project, log.log_id, position, min(end, position + PAGE))
            )
            if [e.seq for e in page] != list(range(position, position + len(page))) or not page:
                raise VerificationError(
                    "entries are missing from the store", item=f"entry {position}"
                )
            items: list[bytes | RedactedLeaf] = [
                e.entry if e.entry is not None else RedactedLeaf(e.leaf_hash) for e in page
            ]
            check_entries(items, start=position, origin=log.origin)
            leaves = leaf_hashes_of(items)
            for offset, (entry, computed) in enumerate(zip(page, leaves, strict=True)):
                if entry.entry is not None and leaf_hash(entry.entry) != entry.leaf_hash:
                    raise VerificationError(
                        "the stored bytes do not hash to the stored leaf hash",
                        item=f"entry {position + offset}",
                    )
                if computed != entry.leaf_hash:
                    raise VerificationError("leaf hash mismatch", item=f"entry {position + offset}")
            heads = [e.chain_hash for e in page]
            previous = verify_chain(leaves, previous, heads, start=position)
            redacted += sum(1 for e in page if e.entry is None)
            if whole:
                tree = extend_tree(tree, leaves)
            else:
                items_all.extend(items)
                heads_all.extend(heads)
            checked += len(page)
            position += len(page)
        if whole:
            if tree.root() != signed.checkpoint.root_hash:
                raise VerificationError(
                    f"calculated root {tree.root().hex()} does not match the signed root "
                    f"{signed.checkpoint.root_hash.hex()}",
                    item="checkpoint",
                )
        else:
            proofs = ledger.inclusion_proofs(project, log.log_id, [start, end - 1], row.size)
            verify_log_range(
                items_all,
                signed,
                start=start,
                first_proof=proofs[0],
                last_proof=proofs[1],
                prev_hash=range_prev,
                expected_chain_heads=heads_all,
                origin=log.origin,
            )
    except VerificationError as exc:
        return RangeReport(
            False,
            start,
            end,
            row.size,
            row.root_hash,
            checked,
            redacted,
            exc.item or "log",
            exc.message,
        )
    return RangeReport(True, start, end, row.size, row.root_hash, checked, redacted)
