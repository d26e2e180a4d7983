"""Installation settings: flags override environment variables override defaults
(the operating contract, ARCHITECTURE §12)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".trailseal")
    database_url: str | None = None  # postgresql://… ; None means SQLite in data_dir
    host_name: str = "trailseal.local"  # the origin's host-name part (§2)
    public_url: str | None = None  # base for absolute links
    workers: int = 1

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        settings = cls(
            host=env.get("TRAILSEAL_HOST", cls.host),
            port=int(env.get("TRAILSEAL_PORT", cls.port)),
            data_dir=Path(env.get("TRAILSEAL_DATA_DIR", str(cls.data_dir))),
            database_url=env.get("TRAILSEAL_DATABASE_URL") or None,
            host_name=env.get("TRAILSEAL_HOST_NAME", cls.host_name),
            public_url=env.get("TRAILSEAL_PUBLIC_URL") or None,
            workers=int(env.get("TRAILSEAL_WORKERS", cls.workers)),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given)

    @property
    def uses_postgres(self) -> bool:
        return bool(self.database_url) and str(self.database_url).startswith(
            ("postgresql://", "postgres://")
        )

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "trailseal.db"

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def environment(self) -> dict[str, str]:
        """These settings as environment variables, for worker processes."""
        env = {
            "TRAILSEAL_HOST": self.host,
            "TRAILSEAL_PORT": str(self.port),
            "TRAILSEAL_DATA_DIR": str(self.data_dir),
            "TRAILSEAL_HOST_NAME": self.host_name,
            "TRAILSEAL_WORKERS": str(self.workers),
        }
        if self.database_url:
            env["TRAILSEAL_DATABASE_URL"] = self.database_url
        if self.public_url:
            env["TRAILSEAL_PUBLIC_URL"] = self.public_url
        return env
