"""A throwaway PostgreSQL server for the tests, started from the Debian package's binaries.

The tests need a real PostgreSQL (SQLite hides dialect differences), but must not depend on, or
disturb, a cluster the host may already run: each server gets its own data directory, a free
loopback port and its own socket directory, and is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

POSTGRES_ROOT = Path("/usr/lib/postgresql")
MISSING = "PostgreSQL is not installed: run `sudo bash scripts/install.sh --with-test-deps`"
COMMAND_TIMEOUT_S = 120


def find_bin_dir(root: Path = POSTGRES_ROOT) -> Path:
    """The bin directory of the newest PostgreSQL installed (Debian installs versions side by side)."""
    candidates: list[tuple[tuple[int, ...], Path]] = []
    for bin_dir in root.glob("*/bin"):
        if not all((bin_dir / name).is_file() for name in ("initdb", "pg_ctl", "postgres", "createdb")):
            continue
        try:
            version = tuple(int(part) for part in bin_dir.parent.name.split("."))
        except ValueError:
            continue
        candidates.append((version, bin_dir))
    if not candidates:
        raise RuntimeError(MISSING)
    return max(candidates)[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """One PostgreSQL server with a `cove` database; `url` is what Cove's `database_url` takes."""

    def __init__(self, database: str = "cove") -> None:
        self.bin_dir = find_bin_dir()
        self.database = database
        self.port = _free_port()
        self.root: Path | None = None
        self.started = False

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def _data_dir(self) -> Path:
        assert self.root is not None, "the server has not been started"
        return self.root / "data"

    def start(self) -> None:
        """initdb, start and create the database; on any failure nothing is left behind."""
        # /var/tmp rather than pytest's tmp_path: the postgres user must be able to reach it.
        self.root = Path(tempfile.mkdtemp(prefix="cove-pg-", dir="/var/tmp"))
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        assert self.root is not None
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(MISSING) from None
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        initdb_options = ("-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync")
        self._run("initdb", "-D", str(self._data_dir), *initdb_options)
        # Durability is pointless for a database deleted after the tests; skipping it is faster.
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = self.root / "postgres.log"
        self.started = True  # from here on, stop() must try pg_ctl stop: a timed-out start may run
        try:
            self._run("pg_ctl", "-D", str(self._data_dir), "-l", str(log), "-o", options, "-w", "start")
        except RuntimeError as exc:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"{exc}\n{server_log}") from None
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.database)

    def _run(self, tool: str, *args: str) -> None:
        """Run a PostgreSQL tool as the postgres user: the server refuses to run as root."""
        command = [str(self.bin_dir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        # PG* variables of the caller (PGHOST, PGDATABASE, ...) must not redirect the tools.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        result = subprocess.run(
            command,
            cwd=self.root,  # the postgres user cannot enter root's working directory
            env=env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{tool} failed with {result.returncode}: {result.stderr.strip() or result.stdout.strip()}"
            )

    def stop(self) -> None:
        """Stop the server at once (its data is thrown away anyway) and delete its directory."""
        if self.started:
            self.started = False
            # An error means it is already gone; the directory is removed regardless.
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self._data_dir), "-m", "immediate", "-w", "stop")
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
