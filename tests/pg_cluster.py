"""A private PostgreSQL cluster for a test that must stop the database: initdb in a folder of
its own, a free port on 127.0.0.1, trust auth. The shared test server is never touched.

PostgreSQL refuses to run as root: under root the cluster runs as the ``postgres`` user
(its folder is given to that user); a test skips when there is no such user or no
PostgreSQL binaries.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from ops_support import free_port


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2] or 0))
    return Path(found[-1]) if found else None


class PrivateCluster:
    """``initdb`` now; :meth:`start`, :meth:`stop` (fast shutdown: the server is gone until
    started again), :meth:`close` (stopped and deleted)."""

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None or not (bin_dir / "initdb").exists():
            pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql")
        self.bin = bin_dir
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root and there is no postgres user to run a cluster")
            self.user = "postgres"
        # Not under pytest's tmp_path: its folders are private to root, and the server's
        # user must reach this one.
        self.root = Path(tempfile.mkdtemp(prefix="swanwatch-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        if self.user is not None:
            shutil.chown(self.root, self.user)
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin / tool), *args],
            user=self.user,
            capture_output=True,
            text=True,
            cwd=self.root,
            check=False,
        )
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise AssertionError(f"{tool} failed: {done.stdout}{done.stderr}\n{log}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories="
        self._run(
            "pg_ctl", "start", "-w", "-t", "120", "-D", str(self.data), "-l", str(self.log),
            "-o", options,
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server (fast: sessions are ended) and wait until it is gone."""
        self._run("pg_ctl", "stop", "-w", "-t", "120", "-m", "fast", "-D", str(self.data))

    def close(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.data))
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
