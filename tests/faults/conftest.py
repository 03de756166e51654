"""A throwaway PostgreSQL cluster per test, to crash and restart at will; the shared server is never touched."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from tests.e2e.conftest import sandbox  # noqa: F401  (the sandbox process fixture, shared with the e2e tests)

DATABASE = "durabot"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: crashes and restarts a throwaway PostgreSQL cluster of its own")


def _binaries() -> Path | None:
    """The newest PostgreSQL server binaries installed from Debian's packages, if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A PostgreSQL cluster in a temporary directory, on a free port, run as the ``postgres`` user.

    ``initdb`` refuses to run as root, so as root every server command runs through
    ``runuser -u postgres``; the directory (data, log and unix socket) belongs to that user.
    """

    def __init__(self, binaries: Path, root: Path) -> None:
        self._bin = binaries
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"
        self.started_at: list[float] = []
        """``time.monotonic()`` each time the server became ready (the same clock the sandbox records with)."""

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self._bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise AssertionError(f"{tool} {' '.join(args)} failed ({done.returncode}):\n{done.stderr}\n{log}")
        return done

    def init(self) -> None:
        """Create the cluster (trust authentication, no fsync: a crash here is a process crash, not a power cut)."""
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        """Start the server and wait until it accepts connections (after crash recovery, if any)."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "120", "start")
        self.started_at.append(time.monotonic())

    def crash(self) -> None:
        """Stop the server the hard way, as a crash would: every connection dies, no checkpoint."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def restart(self, down_seconds: float = 0.0) -> None:
        """Crash, stay down for ``down_seconds``, start again."""
        self.crash()
        self.restart_after(down_seconds)

    def restart_after(self, down_seconds: float) -> None:
        """Start the crashed server again after ``down_seconds``."""
        time.sleep(down_seconds)
        self.start()

    def begin_smart_shutdown(self) -> None:
        """Ask the server to stop once its sessions end; meanwhile it refuses new connections (57P03)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "smart", "-W", "stop")

    def is_running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def create_database(self) -> None:
        self._run("createdb", "-h", str(self.root), "-p", str(self.port), "-U", "postgres", DATABASE)

    def remove(self) -> None:
        if self.data.exists() and self.is_running():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of ``sql`` on the cluster's database."""

        async def fetch() -> list[tuple[Any, ...]]:
            connection = await asyncpg.connect(self.url)
            try:
                return [tuple(row) for row in await connection.fetch(sql)]
            finally:
                await connection.close()

        return asyncio.run(fetch())


def _unavailable_reason() -> str | None:
    if _binaries() is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
    if os.geteuid() == 0 and (shutil.which("runuser") is None or _postgres_user_missing()):
        return "running as root, but runuser or the postgres user is missing"
    return None


def _postgres_user_missing() -> bool:
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return True
    return False


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A running throwaway cluster with an empty ``durabot`` database; removed afterwards."""
    reason = _unavailable_reason()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the fault tests must run under CI: {reason}")
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="durabot-faults-", dir="/tmp" if os.geteuid() == 0 else None))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = Cluster(_binaries(), root)  # type: ignore[arg-type]
    try:
        server.init()
        server.start()
        server.create_database()
        yield server
    finally:
        server.remove()
