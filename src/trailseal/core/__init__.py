"""trailseal.core: the pure integrity core (ARCHITECTURE §3, §5).

Standard library, ``cryptography`` and ``orjson`` only: no IO, no clock (time is a
parameter), no threads. The server proves and the SDK verifies with this same code.
Public names are re-exported here as the modules land.
"""

from __future__ import annotations

__all__: list[str] = []
