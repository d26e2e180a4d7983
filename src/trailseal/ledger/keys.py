"""Project signing keys: one Ed25519 key per project, sealed at rest under the master key
(ARCHITECTURE §5, §10).

The master key comes from ``TRAILSEAL_MASTER_KEY`` (base64 of 32 bytes). On SQLite only, when
it is unset, a 0600 ``master.key`` file in the data directory is created and used; on
PostgreSQL the server refuses to start without it. Private keys are sealed with AES-256-GCM,
the project and key id bound in as associated data so a sealed key cannot be moved to
another project.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from trailseal.core.encoding import b64decode_canonical, b64encode
from trailseal.errors import ValidationError
from trailseal.store.base import SigningKeyRow, Store
from trailseal.store.errors import MasterKeyError

__all__ = ["MASTER_KEY_ENV", "ProjectKeys", "load_master_key", "open_key", "seal_key"]

MASTER_KEY_ENV = "TRAILSEAL_MASTER_KEY"
MASTER_KEY_FILE = "master.key"
_NONCE = 12


def load_master_key(*, data_dir: Path | None, allow_file: bool) -> bytes:
    """The 32-byte master key: from the environment, else (SQLite only) from the data
    directory's key file, created on first use."""
    configured = os.environ.get(MASTER_KEY_ENV)
    if configured:
        try:
            return b64decode_canonical(configured.strip(), field=MASTER_KEY_ENV, size=32)
        except ValidationError as exc:
            raise MasterKeyError(
                f"{MASTER_KEY_ENV} must be the base64 of 32 random bytes"
                " (e.g. `python -c 'import os,base64;print(base64.b64encode(os.urandom(32))"
                ".decode())'`)"
            ) from exc
    if not allow_file or data_dir is None:
        raise MasterKeyError(
            f"{MASTER_KEY_ENV} is not set; it is required with PostgreSQL so that every"
            " server process can open the signing keys"
        )
    path = data_dir / MASTER_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first; read theirs
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(b64encode(os.urandom(32)) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
    return b64decode_canonical(path.read_text().strip(), field=str(path), size=32)


def seal_key(master: bytes, project: str, key_id: str, seed: bytes, nonce: bytes) -> bytes:
    aad = f"{project}\n{key_id}".encode()
    return nonce + AESGCM(master).encrypt(nonce, seed, aad)


def open_key(master: bytes, row: SigningKeyRow) -> Ed25519PrivateKey:
    aad = f"{row.project}\n{row.key_id}".encode()
    nonce, sealed = row.private_sealed[:_NONCE], row.private_sealed[_NONCE:]
    try:
        seed = AESGCM(master).decrypt(nonce, sealed, aad)
    except InvalidTag as exc:
        raise MasterKeyError(
            f"the master key cannot open project {row.project!r}'s signing key: is"
            f" {MASTER_KEY_ENV} the one this database was created with?"
        ) from exc
    return Ed25519PrivateKey.from_private_bytes(seed)


def _public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


class ProjectKeys:
    """Loads (or creates, once) each project's signing key and keeps it in memory."""

    def __init__(
        self,
        store: Store,
        master: bytes,
        *,
        now: Callable[[], str],
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._store = store
        self._master = master
        self._now = now
        self._random = random
        self._cache: dict[str, Ed25519PrivateKey] = {}
        self._lock = threading.Lock()

    def private_key(self, project: str) -> Ed25519PrivateKey:
        key = self._cache.get(project)
        if key is not None:
            return key
        with self._lock:
            key = self._cache.get(project)
            if key is None:
                key = self._load_or_create(project)
                self._cache[project] = key
            return key

    def public_key(self, project: str) -> bytes:
        return _public_bytes(self.private_key(project))

    def _load_or_create(self, project: str) -> Ed25519PrivateKey:
        rows = self._store.signing_keys(project)
        if not rows:
            seed = self._random(32)
            public = _public_bytes(Ed25519PrivateKey.from_private_bytes(seed))
            key_id = hashlib.sha256(public).hexdigest()[:16]
            candidate = SigningKeyRow(
                project,
                key_id,
                public,
                seal_key(self._master, project, key_id, seed, self._random(_NONCE)),
                self._now(),
            )
            rows = [self._store.add_signing_key(candidate)]
        return open_key(self._master, rows[-1])
