"""trailseal: a self-hostable, tamper-evident audit log."""

from __future__ import annotations

__version__ = "0.1.0"

from trailseal.client import AsyncClient, Client

__all__ = ["AsyncClient", "Client", "__version__"]
