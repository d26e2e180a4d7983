"""Request schemas and examples for the OpenAPI document.

Ingest bodies are parsed with orjson and validated by the core schema (one validator for
server and SDK, errors as JSON pointers), so their OpenAPI schemas are written here by
hand rather than derived from pydantic models.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["BATCH_EXAMPLE", "EVENT_EXAMPLE", "batch_request_schema", "event_request_schema"]

EVENT_EXAMPLE: Final[dict[str, Any]] = {
    "action": "invoice.deleted",
    "actor": {"id": "user_123", "type": "user", "name": "Alice Example"},
    "resource": {"type": "invoice", "id": "inv_42"},
    "organization_id": "acme",
    "outcome": "success",
    "occurred_at": "2026-11-23T10:00:00Z",
    "metadata": {"amount": 1200, "currency": "EUR"},
    "tags": ["billing"],
}

BATCH_EXAMPLE: Final[dict[str, Any]] = {
    "events": [EVENT_EXAMPLE, dict(EVENT_EXAMPLE, action="invoice.created")]
}

_REF = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "id": {"type": "string"},
        "name": {"type": "string"},
    },
}


def event_request_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["action", "actor"],
        "additionalProperties": False,
        "properties": {
            "id": {
                "type": "string",
                "pattern": "^[A-Za-z0-9._:-]{1,128}$",
                "description": "Client-chosen id; also the idempotency key.",
            },
            "action": {
                "type": "string",
                "maxLength": 256,
                "description": "Dot notation, e.g. `invoice.deleted`.",
            },
            "actor": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "type": {
                        "type": "string",
                        "enum": ["user", "agent", "system", "service", "api_key"],
                    },
                    "name": {"type": "string"},
                    "email": {"type": "string"},
                },
            },
            "resource": _REF,
            "targets": {"type": "array", "items": _REF},
            "outcome": {"type": "string", "enum": ["success", "failure", "error"]},
            "organization_id": {"type": "string"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "message": {"type": "string"},
            "source": {"type": "string"},
            "status": {"type": "string"},
            "old": {},
            "new": {},
            "context": {
                "type": "object",
                "properties": {
                    "ip": {"type": "string"},
                    "user_agent": {"type": "string"},
                    "request_id": {"type": "string"},
                    "location": {"type": "string"},
                },
            },
            "metadata": {"type": "object"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "signature": {"type": "object"},
        },
    }


def batch_request_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["events"],
        "properties": {
            "events": {
                "type": "array",
                "maxItems": 1000,
                "minItems": 1,
                "items": event_request_schema(),
            }
        },
    }
