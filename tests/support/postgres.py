"""A PostgreSQL cluster of a test's own, in a temporary directory, that the test may stop
and start (the shared server on 5432 serves every other test and must stay up).

initdb refuses to run as root, as CI does, so the cluster then belongs to the `postgres`
system user, which Debian's server package creates."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.net import free_port


class PostgresMissing(RuntimeError):
    pass


def _bin_dir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        raise PostgresMissing("PostgreSQL's server binaries (pg_ctl) are not installed")
    return found[-1].parent


def _as_owner(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@dataclass
class PrivateCluster:
    dir: Path
    port: int
    bin: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _as_owner([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), *args]),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._pg_ctl("-w", "-l", str(self.dir / "server.log"), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session at once (what a service restart does); `immediate`
        is a crash: no shutdown checkpoint, recovery at the next start."""
        self._pg_ctl("-w", "-m", mode, "stop")

    def log(self) -> str:
        path = self.dir / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """A fresh, running cluster on a free port with trust auth; removed afterwards."""
    bin_dir = _bin_dir()
    base = Path(tempfile.mkdtemp(prefix="octomail-pg-"))
    os.chmod(base, 0o755)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    cluster = PrivateCluster(base, free_port(), bin_dir)
    try:
        subprocess.run(
            _as_owner(
                [str(bin_dir / "initdb"), "-D", str(base / "data"), "-U", "postgres"]
                + ["--auth=trust", "--no-sync", "-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)
