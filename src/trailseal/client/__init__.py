"""trailseal.client: the Python SDK (ARCHITECTURE §3, §6, §7, §11).

::

    from trailseal.client import Client

    client = Client()                # TRAILSEAL_URL, TRAILSEAL_API_KEY
    event_id = client.log(action="invoice.deleted", actor={"id": "user_1"},
                          organization_id="acme")       # queued; returns at once
    client.flush(timeout=5)
    proof = client.log_sync(action="user.login", actor={"id": "user_1"})
    client.verify_event(event_id, verifier_key=PINNED)  # offline, against a pinned key

- :class:`Client` (threads) and :class:`AsyncClient` (asyncio) share every piece of logic:
  the operations are sans-IO generators (:mod:`~trailseal.client.protocol`), run by either.
- ``log()`` checks the event cheaply on the caller's thread and queues it; a background
  worker batches by size and age, retries (:mod:`~trailseal.client.retry`) and sends what
  still fails to the dead-letter file (:mod:`~trailseal.client.deadletter`).
- ``verify_event`` never takes the server's word: :mod:`~trailseal.client.verify`.
"""

from __future__ import annotations

from trailseal.client._base import DEFAULT_URL, ClientStats, OnFull
from trailseal.client.aio import AsyncClient
from trailseal.client.client import Client
from trailseal.client.deadletter import DeadLetterFile
from trailseal.client.errors import (
    ApiError,
    ClientClosedError,
    ClientError,
    DeliveryError,
    QueueFullError,
    TransportError,
)
from trailseal.client.models import (
    CheckpointInfo,
    Committed,
    EventPage,
    InclusionProof,
    LogInfo,
    Receipt,
    ReplayResult,
    StoredEvent,
    VerifiedEvent,
)
from trailseal.client.retry import RetryPolicy
from trailseal.client.trust import TrustStore
from trailseal.errors import ConsistencyError, ValidationError, VerificationError

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "AsyncClient",
    "CheckpointInfo",
    "Client",
    "ClientClosedError",
    "ClientError",
    "ClientStats",
    "Committed",
    "ConsistencyError",
    "DeadLetterFile",
    "DeliveryError",
    "EventPage",
    "InclusionProof",
    "LogInfo",
    "OnFull",
    "QueueFullError",
    "Receipt",
    "ReplayResult",
    "RetryPolicy",
    "StoredEvent",
    "TransportError",
    "TrustStore",
    "ValidationError",
    "VerificationError",
    "VerifiedEvent",
]
