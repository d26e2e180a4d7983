"""Opening an installation: the store, its schema, the first project and admin key, and
the ledger. Shared by ``trailseal serve``, ``trailseal keys`` and the tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from trailseal.apikeys import new_key
from trailseal.core.schema import format_timestamp
from trailseal.errors import ValidationError
from trailseal.ledger.keys import load_master_key
from trailseal.ledger.service import Ledger, LedgerConfig
from trailseal.settings import Settings
from trailseal.store.base import ApiKeyRow, ProjectRow, Store

__all__ = ["DEFAULT_PROJECT", "bootstrap", "now_text", "open_ledger", "open_store"]

DEFAULT_PROJECT = "default"


def now_text() -> str:
    return format_timestamp(datetime.now(UTC))


def open_store(settings: Settings) -> Store:
    """The configured store, migrated to the newest schema."""
    store: Store
    if settings.database_url and not settings.uses_postgres:
        raise ValidationError(
            "TRAILSEAL_DATABASE_URL must be a postgresql:// URL (unset it for SQLite)",
            field="TRAILSEAL_DATABASE_URL",
            code="invalid",
        )
    if settings.uses_postgres:
        from trailseal.store.postgres import PostgresStore

        assert settings.database_url is not None
        store = PostgresStore(settings.database_url)
    else:
        from trailseal.store.sqlite import SQLiteStore

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = SQLiteStore(settings.sqlite_path, shared_writers=settings.workers > 1)
    store.migrate()
    return store


def bootstrap(store: Store) -> str | None:
    """Create project ``default``; on an installation with no API key at all, create an
    admin key and return its secret (exactly one of several starting processes does)."""
    store.create_project(ProjectRow(DEFAULT_PROJECT, now_text()))
    key = new_key()
    row = ApiKeyRow(
        key.key_id, DEFAULT_PROJECT, key.key_hash, ("admin",), None, "admin", False, now_text()
    )
    return key.secret if store.create_first_api_key(row) else None


def open_ledger(
    store: Store, settings: Settings, *, on_commit: Callable[[int, float], None] | None = None
) -> Ledger:
    master = load_master_key(data_dir=settings.data_dir, allow_file=not settings.uses_postgres)
    return Ledger(store, master, LedgerConfig(host_name=settings.host_name), on_commit=on_commit)
