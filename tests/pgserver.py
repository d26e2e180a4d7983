"""A throwaway PostgreSQL 15 server for tests and benchmarks (ARCHITECTURE §14).

``initdb`` refuses to run as root, so as root the cluster is created and started as the
``postgres`` user. The server listens on 127.0.0.1 on a free port and is stopped (and its
directory removed) on ``stop()``. ``TRAILSEAL_TEST_DSN`` points the tests at an existing
server instead. Nothing here skips: a server that cannot start is an error.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")


def _pg_bin() -> Path:
    for candidate in PG_BIN_CANDIDATES:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    directory: Path
    port: int
    as_postgres_user: bool

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        self._run(
            [
                str(_pg_bin() / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                name,
            ]
        )
        return self.dsn(name)

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(
                [
                    str(_pg_bin() / "pg_ctl"),
                    "-D",
                    str(self.directory / "data"),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ]
            )
        shutil.rmtree(self.directory, ignore_errors=True)

    def _run(self, argv: list[str]) -> None:
        if self.as_postgres_user:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, cwd="/")


def start_postgres(*, durable: bool = False) -> PostgresServer:
    """Start a fresh cluster. ``durable=False`` turns fsync off: tests kill client
    processes, never the server, so server-side fsync only costs time there; benchmarks
    pass ``durable=True`` so figures include real commits."""
    as_root = os.geteuid() == 0
    directory = Path(tempfile.mkdtemp(prefix="trailseal-pg-"))
    server = PostgresServer(directory, _free_port(), as_root)
    if as_root:
        shutil.chown(directory, user="postgres")
    bin_dir = _pg_bin()
    settings = [
        "-p",
        str(server.port),
        "-k",
        str(directory),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "max_connections=200",
        "-c",
        "shared_buffers=256MB",
    ]
    if not durable:
        settings += [
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]
    try:
        server._run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(directory / "data"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        server._run(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(directory / "data"),
                "-o",
                " ".join(settings),
                "-l",
                str(directory / "server.log"),
                "-w",
                "start",
            ]
        )
    except subprocess.CalledProcessError as exc:
        log = directory / "server.log"
        detail = log.read_text() if log.exists() else ""
        shutil.rmtree(directory, ignore_errors=True)
        raise RuntimeError(
            f"could not start PostgreSQL: {exc.stderr.decode(errors='replace')}{detail}"
        ) from exc
    return server
