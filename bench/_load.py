"""Shared by the HTTP benchmarks (bench/tracking.py, bench/unsubscribe.py): the service run
as production runs it on a throw-away database, wrk at saturation with the CPU it cost per
request, and an open-loop load at a fixed rate.

    with stage(OCTOMAIL_SOME_SETTING="1") as run:   # database, env, temp dir; cleaned up
        seed(run.url, ...)                           # the script's own rows
        base = run.serve(workers)                    # uvicorn, uvloop + httptools, N workers
        result = run.wrk(base + "/healthz", run.script("get.lua", LUA_GET), 10, 16, 1)
        p99 = fixed_rate(run.port, ["/healthz"], 500.0, 10)["p99"]  # open loop

The open loop is wrk2's idea: requests leave on a fixed schedule whatever the answers do
and each latency runs from its scheduled time, so a stall is not hidden by a client that
waits for it (closed-loop wrk would simply send less).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _pg import create_database, drop_database
from _sinks import free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-key-0123456789abcdef"
PEPPER = "bench-pepper-0123456789abcdef"

# wrk's end-of-run summary as one JSON line (run_wrk reads it); append it to a script that
# builds its own requests.
LUA_GET = r"""
function done(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p90_ms": %.3f, '
    .. '"p99_ms": %.3f, "max_ms": %.3f, "non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status, summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
"""


def start_server(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    """uvicorn as production runs it (uvloop + httptools, no access log), in its own
    process group; returns once /healthz answers."""
    options = f"--host 127.0.0.1 --port {port} --workers {workers} --loop uvloop --http httptools"
    cmd = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", *options.split()]
    cmd += ["--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    stop_server(proc)
    raise SystemExit("server did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """The whole process group: uvicorn's workers go with their supervisor."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def cpu_seconds(server_pid: int, db_name: str) -> tuple[float, float]:
    """CPU time used so far by the server's processes and by PostgreSQL's backends serving
    this database plus its WAL writer and checkpointer (other databases' work excluded)."""
    import psutil

    def total(procs: list) -> float:
        seconds = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                seconds += times.user + times.system
            except psutil.Error:
                pass
        return seconds

    server = psutil.Process(server_pid)
    shared = ("walwriter", "checkpointer", "background writer")
    pg = [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if (p.info["name"] or "").startswith("postgres")
        and any(
            db_name in part or any(s in part for s in shared) for part in p.info["cmdline"] or []
        )
    ]
    return total([server, *server.children(recursive=True)]), total(pg)


def run_wrk(
    url: str,
    script: Path,
    duration: int,
    connections: int,
    threads: int,
    args: list[str],
    server_pid: int,
    db_name: str,
) -> dict:
    """One closed-loop wrk run: its WRKJSON summary plus req/s, the server's and
    PostgreSQL's CPU per request and the highest load average seen."""
    before = cpu_seconds(server_pid, db_name)
    load_before = os.getloadavg()[0]
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
        "--",
        *args,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRKJSON "))
    result = json.loads(line.removeprefix("WRKJSON "))
    after = cpu_seconds(server_pid, db_name)
    result["rps"] = result["requests"] / result["seconds"]
    result["app_cpu_ms"] = (after[0] - before[0]) * 1000 / max(result["requests"], 1)
    result["pg_cpu_ms"] = (after[1] - before[1]) * 1000 / max(result["requests"], 1)
    result["load"] = max(load_before, os.getloadavg()[0])
    return result


def plain_url(url: str) -> str:
    """The stage's SQLAlchemy URL as psycopg takes it (the scripts seed by COPY)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def migrate(url: str) -> str:
    """Bring the database to the current schema by the app's own migrations, with the
    settings os.environ holds now (stage() put them there); returns plain_url(url)."""
    from app.db import get_engine
    from app.migrate import upgrade
    from app.settings import get_settings

    get_settings.cache_clear()
    engine = get_engine()
    upgrade(engine)
    engine.dispose()
    return plain_url(url)


def copy_subscribers(conn: Any, rows: int, email: str, name: str = "") -> None:
    """`rows` active subscribers who allow tracking, by COPY on a psycopg connection; the
    i-th has address email.format(i) and name name.format(i)."""
    with conn.cursor().copy(
        "COPY subscriber (email, name, attributes, status, tracking_allowed, "
        "created_at, updated_at) FROM STDIN"
    ) as copy:
        for i in range(rows):
            row = (email.format(i), name.format(i), "{}", "active", True)
            copy.write_row((*row, "2026-01-01", "2026-01-01"))


@dataclass
class Stage:
    """One benchmark's throw-away database, temp dir and environment, and its server."""

    tmp: Path
    db_name: str
    url: str
    env: dict[str, str]
    server: subprocess.Popen[bytes] | None = None
    port: int = 0

    def serve(self, workers: int) -> str:
        """Start the server on a free port; returns its base URL."""
        self.port = free_port()
        self.server = start_server(self.env, self.port, workers)
        return f"http://127.0.0.1:{self.port}"

    def script(self, name: str, text: str) -> Path:
        """A wrk Lua script written to the temp dir."""
        path = self.tmp / name
        path.write_text(text)
        return path

    def wrk(
        self,
        url: str,
        script: Path,
        duration: int,
        connections: int,
        threads: int,
        args: list[str] | None = None,
    ) -> dict:
        """run_wrk against this stage's server and database."""
        assert self.server is not None, "serve() first"
        pid, name = self.server.pid, self.db_name
        return run_wrk(url, script, duration, connections, threads, args or [], pid, name)


@contextlib.contextmanager
def stage(**extra_env: str) -> Iterator[Stage]:
    """A fresh database and temp dir, and the service's settings for them (`extra_env`
    added) in Stage.env for the server and in os.environ for the seeding, which runs in
    this process; the server stopped, the database dropped, the temp dir removed at the end."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (scripts/system-deps installs it)")
    tmp = Path(tempfile.mkdtemp(prefix="octomail-bench-"))
    name, url = create_database()
    run = None
    try:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OCTOMAIL_")},
            "OCTOMAIL_DATABASE_URL": url,
            "OCTOMAIL_SECRET_KEYS": SECRET,
            "OCTOMAIL_SUPPRESSION_PEPPER": PEPPER,
            "OCTOMAIL_VAR_DIR": str(tmp / "var"),
            "OCTOMAIL_BASE_URL": "http://127.0.0.1",
            "OCTOMAIL_EMBEDDED_WORKER": "false",
            "OCTOMAIL_EMBEDDED_POLLER": "false",
            "OCTOMAIL_EMBEDDED_SCHEDULER": "false",
            "OCTOMAIL_POSTAL_ADDRESS": "1 Bench Street, Paris",
            **extra_env,
        }
        os.environ.update(env)
        run = Stage(tmp, name, url, env)
        yield run
    finally:
        if run is not None and run.server is not None:
            stop_server(run.server)
        drop_database(name)
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- open-loop load (wrk2-style)


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status


async def _fixed_rate(port: int, paths: list[str], rate: float, seconds: float) -> list[float]:
    """Send len = rate*seconds requests on a fixed schedule over a pool of keep-alive
    connections; each latency runs from the request's scheduled time to its full answer."""
    total = int(rate * seconds)
    idle: list[_Conn] = []
    latencies: list[float] = []
    errors = 0

    async def one(i: int, due: float) -> None:
        nonlocal errors
        conn = idle.pop() if idle else _Conn(*await asyncio.open_connection("127.0.0.1", port))
        raw = f"GET {paths[i % len(paths)]} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        try:
            status = await conn.request(raw)
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
            return
        latencies.append(time.perf_counter() - due)
        if status >= 400:
            errors += 1
        idle.append(conn)

    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.writer.close()
    if errors:
        print(f"  ({errors} errors at fixed rate)")
    return latencies


def fixed_rate(port: int, paths: list[str], rate: float, seconds: float) -> dict[str, float]:
    """GET `paths` in turn at `rate` requests/s for `seconds`, open loop: the count
    answered and p50/p99/max latency in ms, from each request's scheduled send time."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    lat = sorted(runner(_fixed_rate(port, paths, rate, seconds)))
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
    return {
        "n": len(lat),
        "p50": statistics.median(lat) * 1000,
        "p99": pick(0.99),
        "max": lat[-1] * 1000,
    }
