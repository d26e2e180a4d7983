"""The PDF report of a selection (fpdf2), for people: summary, filters, an event table, the
checkpoints and a plain-language verification statement.

For human-sized selections only (§11): up to :data:`MAX_REPORT_EVENTS` events the report
lists every event and states that each one was verified before it was written down: its
leaf hash recomputed from the stored bytes (origin and seq read from them), its inclusion
proof checked against the log's latest checkpoint, and that checkpoint opened with the
log's verifier key. Larger selections get the summary, the checkpoints and a pointer to the
evidence pack, which is what scales and what an auditor checks independently.

Text: a Unicode TrueType font is used when one is found (``TRAILSEAL_PDF_FONT``, else DejaVu
Sans where Debian's ``fonts-dejavu-core`` puts it, or the Fedora/Arch paths). Without one
the report falls back to the PDF core font, which holds Latin-1 only. Characters the font
cannot show (outside Latin-1 there; CJK with DejaVu) are printed as ``?`` and the report
says so. Nothing is bundled.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from trailseal.core.checkpoint import SignedCheckpoint
from trailseal.core.entry import parse_entry
from trailseal.core.hashing import leaf_hash
from trailseal.core.merkle import verify_inclusion
from trailseal.core.schema import with_read_defaults
from trailseal.core.verify import open_log_checkpoint
from trailseal.errors import ValidationError, VerificationError
from trailseal.exports.selection import PAGE_SIZE, ExportProofs, Selection, iter_log
from trailseal.ledger.service import Ledger
from trailseal.store.base import CheckpointRow, LogHead

__all__ = ["MAX_REPORT_EVENTS", "ReportSummary", "build_pdf_report", "find_unicode_font"]

#: Above this many events the report holds the summary only (§11).
MAX_REPORT_EVENTS: Final = 10_000
#: Logs described one by one; beyond that the report gives their number.
MAX_LISTED_LOGS: Final = 200

_FONT_CANDIDATES: Final = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  # Debian, Ubuntu
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",  # Fedora
    "/usr/share/fonts/TTF/DejaVuSans.ttf",  # Arch
)
_COLUMNS: Final = (("Time (UTC)", 36.0), ("Actor", 44.0), ("Action", 46.0), ("Resource", 44.0))
_OUTCOME_WIDTH: Final = 20.0
_ROW_HEIGHT: Final = 5.0


@dataclass(frozen=True, slots=True)
class ReportSummary:
    path: Path
    events: int
    listed: bool  # False: above MAX_REPORT_EVENTS, summary only
    verified: bool  # every listed event verified
    failure: str | None
    unicode_font: bool


@dataclass
class _LogSection:
    log: LogHead
    checkpoint: CheckpointRow | None
    verifier_key: str
    proofs: ExportProofs
    signed: SignedCheckpoint | None = None
    events: int = 0
    failure: str | None = None
    rows: list[tuple[str, str, str, str, str, int]] = field(default_factory=list)


def find_unicode_font() -> Path | None:
    configured = os.environ.get("TRAILSEAL_PDF_FONT")
    for candidate in ([configured] if configured else []) + list(_FONT_CANDIDATES):
        path = Path(candidate)
        if path.is_file():
            return path
    return None


def _short_time(stamp: str) -> str:
    return stamp[:19].replace("T", " ") if stamp else ""


def _row(entry: bytes | None, seq: int) -> tuple[str, str, str, str, str, int]:
    if entry is None:
        return ("", "(redacted)", "", "", "", seq)
    event = with_read_defaults(orjson.loads(entry)["event"])
    actor = event.get("actor") or {}
    actor_text = str(actor.get("name") or actor.get("id") or "")
    if actor.get("name") and actor.get("id"):
        actor_text = f"{actor['name']} ({actor['id']})"
    resource = event.get("resource") or {}
    resource_text = "/".join(str(resource[k]) for k in ("type", "id") if resource.get(k))
    return (
        _short_time(str(event.get("occurred_at") or "")),
        actor_text,
        str(event.get("action") or ""),
        resource_text,
        str(event.get("outcome") or ""),
        seq,
    )


def _verify_section(ledger: Ledger, selection: Selection, section: _LogSection) -> None:
    """Read and verify the log's matching entries below its checkpoint (module docstring);
    records the first failure instead of raising, so the report can state it."""
    checkpoint = section.checkpoint
    if checkpoint is None:
        return
    project, log = selection.project, section.log
    try:
        section.signed = open_log_checkpoint(checkpoint.note, section.verifier_key)
    except VerificationError as exc:
        section.failure = f"the checkpoint of size {checkpoint.size} does not verify: {exc}"
        return
    body = section.signed.checkpoint
    for entries in iter_log(
        ledger.store, project, selection.flt, log.log_id, below=checkpoint.size, page=PAGE_SIZE
    ):
        proofs = section.proofs.inclusion_proofs(
            project, log.log_id, [e.seq for e in entries], checkpoint.size
        )
        for entry, proof in zip(entries, proofs, strict=True):
            section.events += 1
            try:
                leaf = entry.leaf_hash
                if entry.entry is not None:
                    parsed = parse_entry(entry.entry)
                    if parsed.origin != body.origin or parsed.seq != entry.seq:
                        raise VerificationError("the stored bytes name another log or seq")
                    leaf = leaf_hash(entry.entry)
                    if leaf != entry.leaf_hash:
                        raise VerificationError("the stored bytes do not hash to the leaf hash")
                verify_inclusion(entry.seq, body.size, leaf, proof, body.root_hash)
            except (VerificationError, ValidationError) as exc:
                if section.failure is None:
                    section.failure = f"entry {entry.seq} (event {entry.event_id}): {exc}"
            section.rows.append(_row(entry.entry, entry.seq))


class _Report(FPDF):
    def __init__(self, font: Path | None) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.unicode = font is not None
        self.replaced = False
        if font is not None:
            self.add_font("body", "", str(font))
            bold = font.with_name(font.stem + "-Bold" + font.suffix)
            self.add_font("body", "B", str(bold if bold.is_file() else font))
            self.body_font = "body"
        else:
            self.body_font = "helvetica"
        self.set_auto_page_break(auto=True, margin=15)
        self.set_margins(12, 12, 12)
        self.alias_nb_pages()

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font(self.body_font, "", 7)
        self.cell(0, 5, f"trailseal audit report - page {self.page_no()}/{{nb}}", align="C")

    def clean(self, text: str) -> str:
        """Text the current font can show (core fonts: Latin-1 only)."""
        text = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
        if self.unicode:
            # Characters the font has no glyph for (CJK in DejaVu) would print as blanks.
            cmap = getattr(self.current_font, "cmap", None)
            if cmap is None or all(ord(c) in cmap for c in text):
                return text
            self.replaced = True
            return "".join(c if ord(c) in cmap else "?" for c in text)
        cleaned = text.encode("latin-1", "replace").decode("latin-1")
        self.replaced = self.replaced or cleaned != text
        return cleaned

    def fit(self, text: str, width: float) -> str:
        text = self.clean(text)
        if self.get_string_width(text) <= width - 1.5:
            return text
        while text and self.get_string_width(text + "...") > width - 1.5:
            text = text[: max(0, len(text) - max(1, len(text) // 8))]
        return text + "..."

    def heading(self, text: str) -> None:
        self.ln(2)
        self.set_font(self.body_font, "B", 11)
        self.cell(0, 7, self.clean(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(self.body_font, "", 9)

    def paragraph(self, text: str, size: float = 9) -> None:
        self.set_font(self.body_font, "", size)
        self.multi_cell(0, 4.6, self.clean(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def pair(self, name: str, value: str) -> None:
        self.set_font(self.body_font, "B", 8.5)
        self.cell(32, 4.6, self.clean(name))
        self.set_font(self.body_font, "", 8.5)
        self.multi_cell(0, 4.6, self.clean(value), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def table_header(self) -> None:
        self.set_font(self.body_font, "B", 8)
        self.set_fill_color(225, 230, 240)
        for title, width in _COLUMNS:
            self.cell(width, 6, title, border=1, fill=True)
        self.cell(_OUTCOME_WIDTH, 6, "Outcome", border=1, fill=True)
        self.ln(6)
        self.set_font(self.body_font, "", 7.5)

    def table_row(self, row: tuple[str, str, str, str, str, int], shade: bool) -> None:
        if self.will_page_break(_ROW_HEIGHT):
            self.add_page()
            self.table_header()
        self.set_fill_color(246, 247, 250)
        for (_, width), text in zip(_COLUMNS, row[:4], strict=True):
            self.cell(width, _ROW_HEIGHT, self.fit(text, width), border="LR", fill=shade)
        self.cell(_OUTCOME_WIDTH, _ROW_HEIGHT, self.fit(row[4], _OUTCOME_WIDTH), "LR", fill=shade)
        self.ln(_ROW_HEIGHT)


def _filters_text(described: dict[str, Any]) -> list[tuple[str, str]]:
    shown = []
    for key, value in described.items():
        if value in (None, "", [], ()):
            continue
        shown.append((key, ", ".join(map(str, value)) if isinstance(value, list) else str(value)))
    return shown


def build_pdf_report(
    ledger: Ledger,
    selection: Selection,
    out: Path,
    *,
    created_at: str,
    progress: Callable[[int], None] | None = None,
) -> ReportSummary:
    """Write the PDF report of ``selection`` to ``out`` (module docstring)."""
    store = ledger.store
    total = selection.count(store)
    listed = total <= MAX_REPORT_EVENTS
    sections: list[_LogSection] = []
    proofs = ExportProofs(store)
    logs = selection.logs(store)
    for log in logs:
        if not store.query_entries(
            selection.project, selection.flt, log_ids=[log.log_id], after=None, limit=1
        ):
            continue
        section = _LogSection(
            log,
            ledger.checkpoint(selection.project, log.log_id),
            ledger.verifier_key(selection.project, log),
            proofs,
        )
        sections.append(section)
        if listed:
            _verify_section(ledger, selection, section)
            if progress is not None:
                progress(sum(s.events for s in sections))
        elif len(sections) <= MAX_LISTED_LOGS:
            section.events = store.count_entries(
                selection.project, selection.flt, log_ids=[log.log_id]
            )
    events = sum(s.events for s in sections) if listed else total
    failure = next(
        (f"log of {s.log.organization!r}: {s.failure}" for s in sections if s.failure), None
    )

    font = find_unicode_font()
    pdf = _Report(font)
    pdf.set_title("trailseal audit report")
    pdf.set_creator("trailseal")
    pdf.set_creation_date(datetime.fromisoformat(created_at.replace("Z", "+00:00")))
    pdf.add_page()
    pdf.set_font(pdf.body_font, "B", 16)
    pdf.cell(0, 10, "Audit report", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.body_font, "", 9)
    pdf.pair("Generated", f"{_short_time(created_at)} UTC")
    pdf.pair("Project", selection.project)
    pdf.pair("Events", f"{events} in {len(sections)} organization log(s)")
    pdf.heading("Selection")
    shown = _filters_text(selection.described)
    if not shown:
        pdf.paragraph("No filters: every event of the project that the key may read.")
    for name, value in shown:
        pdf.pair(name, value)

    pdf.heading("Verification")
    for text in _statement(sections, events, listed, failure):
        pdf.paragraph(text)
        pdf.ln(1)
    if failure is not None:
        pdf.set_text_color(180, 0, 0)
        pdf.paragraph(f"FIRST FAILURE: {failure}")
        pdf.set_text_color(0, 0, 0)

    pdf.heading("Checkpoints")
    for section in sections[:MAX_LISTED_LOGS]:
        _describe_checkpoint(pdf, section)
    if len(sections) > MAX_LISTED_LOGS:
        pdf.paragraph(f"... and {len(sections) - MAX_LISTED_LOGS} more logs.")

    if listed and events:
        rows = sorted(
            ((*row, s.log.organization) for s in sections for row in s.rows),
            key=lambda r: (r[0], r[6], r[5]),
        )
        pdf.heading(f"Events ({len(rows)}, by time)")
        pdf.table_header()
        for n, row in enumerate(rows):
            pdf.table_row(row[:6], shade=n % 2 == 1)
        pdf.cell(sum(w for _, w in _COLUMNS) + _OUTCOME_WIDTH, 0, "", border="T")
        pdf.ln(2)
    if pdf.replaced:
        pdf.paragraph(
            "Note: characters the report's font cannot show are printed as '?' (without a "
            "Unicode font on the server, everything outside Latin-1). The exports (CSV, JSON, "
            "NDJSON) and the evidence pack hold the exact text.",
            size=8,
        )
    pdf.output(str(out))
    return ReportSummary(out, events, listed, listed and failure is None, failure, font is not None)


def _statement(
    sections: list[_LogSection], events: int, listed: bool, failure: str | None
) -> list[str]:
    """The verification statement, one paragraph per log."""
    if not sections:
        return ["The selection matched no events; there is nothing to verify."]
    if not listed:
        return [
            f"This selection holds {events} events, more than the {MAX_REPORT_EVENTS} a "
            "readable report lists, so they are summarized here and neither listed nor "
            "verified one by one. For the complete record, which anyone can verify offline "
            "with only the log's public key, export an evidence pack with the same filters "
            "(format 'evidence', e.g. trailseal export --format evidence)."
        ]
    if failure is not None:
        return [
            f"VERIFICATION FAILED. {events} events were checked against their logs' signed "
            "checkpoints and at least one did not verify (below). Treat this selection as "
            "tampered with or damaged, and keep this report as evidence."
        ]
    parts = []
    for section in sections:
        signed = section.signed
        assert signed is not None
        body = signed.checkpoint
        parts.append(
            f"All {section.events} events of organization '{section.log.organization}' were "
            f"verified against checkpoint {body.origin} #{body.size} (root "
            f"{body.root_hash.hex()}), signed by key {section.verifier_key}"
            + (f" at {_stamp(signed.timestamp)}" if signed.timestamp is not None else "")
            + "."
        )
    parts.append(
        "Each event's stored bytes were hashed and proved to be in the log's signed Merkle "
        "tree, so none of them was changed after it was recorded."
    )
    return parts


def _stamp(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _describe_checkpoint(pdf: _Report, section: _LogSection) -> None:
    pdf.set_font(pdf.body_font, "B", 8.5)
    pdf.cell(
        0,
        5,
        pdf.clean(f"Organization '{section.log.organization}' ({section.events} events)"),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    checkpoint = section.checkpoint
    if checkpoint is None:
        pdf.paragraph("No signed checkpoint yet.", size=8)
        return
    pdf.pair("Origin", section.log.origin)
    pdf.pair("Tree size", str(checkpoint.size))
    pdf.pair("Root hash", checkpoint.root_hash.hex())
    if section.signed is not None and section.signed.timestamp is not None:
        pdf.pair("Signed at", _stamp(section.signed.timestamp))
    pdf.pair("Verifier key", section.verifier_key)
