"""A throwaway PostgreSQL cluster for the tests and benchmarks: initdb + pg_ctl from the
server binaries (Debian's ``postgresql`` package), data and socket in a temp folder,
listening on a free loopback port, removed on stop.

initdb and the server refuse to run as root; as root (CI here is root) they run as the
``postgres`` user, which the Debian package creates, through ``runuser``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path


class ClusterError(RuntimeError):
    pass


def server_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise ClusterError("PostgreSQL server binaries missing (/usr/lib/postgresql/<version>/bin): "
                           "apt-get install postgresql, or run `make test`, which does")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, *, fsync: bool = False, max_connections: int = 300, preload: str = "") -> None:
        self.bin = server_bin()
        # As root the server runs as `postgres`, which must reach the folder: under /tmp itself,
        # not a private (0700) TMPDIR such as the test run's own.
        self.root = Path(tempfile.mkdtemp(prefix="th-pg-", dir="/tmp" if os.geteuid() == 0 else None))
        self.data = self.root / "data"
        self.port = 0
        self.fsync = fsync
        self.max_connections = max_connections
        self.preload = preload  # e.g. "pg_stat_statements", for the benchmark's statement counts
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise ClusterError("running as root and there is no `postgres` user to run the server as") from None
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        os.chmod(self.root, 0o755)

    def _run(self, *args: str) -> None:
        proc = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise ClusterError(f"{Path(args[0]).name} failed: {(proc.stderr or proc.stdout).strip()[-500:]}")

    def start(self) -> Cluster:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync", "--no-instructions")
        for attempt in range(5):  # a free port can be taken between the check and the bind
            self.port = _free_port()
            opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
                    f"-c max_connections={self.max_connections} -c fsync={'on' if self.fsync else 'off'} "
                    "-c shared_buffers=64MB"
                    + (f" -c shared_preload_libraries={self.preload}" if self.preload else ""))
            try:
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                          "-w", "-t", "60", "-o", opts, "start")
                return self
            except ClusterError:
                if attempt == 4:
                    raise
        return self

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        pidfile = self.data / "postmaster.pid"
        try:
            if pidfile.exists():
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except ClusterError:
            # pg_ctl could not run (say, as the postgres user): stop our server by its pid.
            with contextlib.suppress(OSError, ValueError, IndexError):
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGQUIT)
            raise
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
