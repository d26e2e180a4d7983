"""trailseal.exports: CSV/JSON/NDJSON exports, PDF reports and evidence packs (ARCHITECTURE §7).

Only the offline pack check is imported here, so that ``trailseal verify PACK.zip`` works
on the base install; the builders (:mod:`~trailseal.exports.formats`,
:mod:`~trailseal.exports.evidence`, :mod:`~trailseal.exports.report`,
:mod:`~trailseal.exports.jobs`) read the store and need the ``server`` extra.
"""

from __future__ import annotations

from trailseal.exports.pack import LogReport as LogReport
from trailseal.exports.pack import PackError as PackError
from trailseal.exports.pack import PackReport as PackReport
from trailseal.exports.pack import verify_pack as verify_pack

__all__ = ["LogReport", "PackError", "PackReport", "verify_pack"]
