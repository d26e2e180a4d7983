"""Storage errors.

TrailsealError
└── StoreError
    ├── DuplicateIdError      an event id the project already holds (retry the batch)
    ├── MasterKeyError        the master key is missing or cannot open a signing key
    └── SchemaError           the database holds a newer schema than this code knows
"""

from __future__ import annotations

from trailseal.errors import TrailsealError

__all__ = ["DuplicateIdError", "MasterKeyError", "SchemaError", "StoreError"]


class StoreError(TrailsealError):
    """Base of the storage layer's errors."""


class DuplicateIdError(StoreError):
    """An insert met an id that another transaction committed first."""


class MasterKeyError(StoreError):
    """The master key that seals signing keys is missing or wrong."""


class SchemaError(StoreError):
    """The database's schema is newer than this version of trailseal understands."""
