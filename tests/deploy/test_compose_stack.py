"""The compose stack brought up for real (marker `compose`, out of the default run: it
builds an image and starts PostgreSQL, two web processes, two workers and a poller, which
takes minutes). Run it with

    .venv/bin/pytest -p no:xdist -m compose tests/deploy -v

It is skipped, saying why, where Docker cannot run it: no `docker`, no daemon, no `docker
compose`, or base images that cannot be pulled (a registry out of reach).

What it checks: every service starts, /healthz and /readyz answer, an API token made with
`octomail token create` in the web container sends a campaign that the workers deliver to an
SMTP sink, and a worker's metrics endpoint counts what it sent."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.compose

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
PROJECT = "octomail-composetest"
PORT = 18700

# An SMTP sink from the same image (aiosmtpd is one of its dependencies): no extra image.
OVERRIDE = """
services:
  smtp:
    image: octomail:composetest
    pull_policy: never
    command: ["python", "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", "0.0.0.0:2525"]
    read_only: true
"""


def _docker(*args: str, timeout: float = 600, check: bool = True, **kw: object):
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=check, **kw
    )


def _skip_without_docker() -> None:
    try:
        info = _docker("info", timeout=30, check=False)
    except FileNotFoundError:
        pytest.skip("docker is not installed: the compose stack cannot be brought up here")
    if info.returncode != 0:
        pytest.skip(f"the Docker daemon is not reachable: {info.stderr.strip()[:200]}")
    if _docker("compose", "version", check=False).returncode != 0:
        pytest.skip("`docker compose` (the Compose v2 plugin) is not installed")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    _skip_without_docker()
    work = tmp_path_factory.mktemp("compose")
    (work / "octomail.env").write_text(
        "\n".join(
            [
                f"OCTOMAIL_SECRET_KEYS={secrets.token_urlsafe(32)}",
                f"OCTOMAIL_SUPPRESSION_PEPPER={secrets.token_urlsafe(32)}",
                f"OCTOMAIL_METRICS_TOKEN={secrets.token_urlsafe(24)}",
                f"OCTOMAIL_BASE_URL=http://127.0.0.1:{PORT}",
                "OCTOMAIL_POSTAL_ADDRESS=Octomail Ltd, 1 Test Street, Paris",
                "OCTOMAIL_FROM=news@example.org",
                "OCTOMAIL_SMTP_URLS=smtp://smtp:2525",
                "",
            ]
        )
    )
    (work / "override.yaml").write_text(OVERRIDE)
    env_file = work / ".env"
    env_file.write_text(
        f"POSTGRES_PASSWORD={secrets.token_urlsafe(16)}\nOCTOMAIL_IMAGE_TAG=composetest\n"
        f"OCTOMAIL_ENV_FILE={work / 'octomail.env'}\nOCTOMAIL_WEB_PORT={PORT}\n"
    )
    base = ["compose", "-p", PROJECT, "--env-file", str(env_file), "-f", str(COMPOSE)]
    base += ["-f", str(work / "override.yaml")]
    for image in ("python:3.11-slim-bookworm", "postgres:16-bookworm"):
        pulled = _docker("pull", image, check=False, timeout=900)
        if pulled.returncode != 0:
            pytest.skip(
                f"cannot pull the base image {image} (registry out of reach?): "
                f"{pulled.stderr.strip()[:300]}"
            )
    try:
        _docker(*base, "up", "-d", "--build", "--wait", "--wait-timeout", "300", timeout=1800)
        yield base
    except subprocess.CalledProcessError as exc:
        logs = _docker(*base, "logs", "--no-color", "--tail", "50", check=False).stdout
        pytest.fail(f"compose up failed: {exc.stderr[-2000:]}\n{logs[-4000:]}")
    finally:
        _docker(*base, "down", "-v", "--remove-orphans", check=False, timeout=300)


def _get(path: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {token}"} if token else {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_the_stack_serves_and_sends(stack: list[str]) -> None:
    assert _get("/healthz")[0] == 200
    status, ready = _get("/readyz")
    assert status == 200, ready
    assert set(ready["checks"]) == {"database", "smtp smtp:2525", "mailbox"}
    ps = _docker(*stack, "ps", "--format", "json").stdout
    running = [json.loads(line)["Service"] for line in ps.splitlines() if line.strip()]
    assert sorted(running).count("worker") == 2
    assert {"web", "poller", "postgres", "smtp"} <= set(running)

    exec_web = [*stack, "exec", "-T", "web", "octomail"]
    _docker(
        *exec_web,
        "user",
        "create",
        "--email",
        "ops@example.org",
        "--role",
        "admin",
        "--password-stdin",
        input="a long enough password\n",
    )
    token = _docker(
        *exec_web, "token", "create", "--user", "ops@example.org", "--name", "ci"
    ).stdout.strip()
    assert _get("/api/v1/topics", token, {"slug": "news", "name": "News"})[0] == 201
    for i in range(20):
        person = {
            "email": f"r{i}@example.com",
            "topics": ["news"],
            "preconfirm": True,
            "consent_source": "compose test",
        }
        assert _get("/api/v1/subscribers", token, person)[0] == 201
    status, campaign = _get(
        "/api/v1/campaigns",
        token,
        {"name": "News", "subject": "Hello", "body": "Hi", "topics": ["news"]},
    )
    assert status == 201, campaign
    assert _get(f"/api/v1/campaigns/{campaign['id']}/send", token, {})[0] == 202
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        progress = _get(f"/api/v1/campaigns/{campaign['id']}/progress", token)[1]
        if progress.get("status") == "done":
            break
        time.sleep(1)
    assert progress["sent"] == 20, progress

    # The workers' counters, read inside the compose network as Prometheus would.
    metrics_token = next(
        line.split("=", 1)[1]
        for line in Path(_env_file(stack)).read_text().splitlines()
        if line.startswith("OCTOMAIL_METRICS_TOKEN=")
    )
    sent = 0.0
    for index in (1, 2):
        text = _docker(
            *stack,
            "exec",
            "-T",
            "--index",
            str(index),
            "worker",
            "python",
            "-c",
            "import sys, urllib.request as u; r = u.Request('http://127.0.0.1:9101/metrics', "
            "headers={'Authorization': 'Bearer ' + sys.argv[1]}); "
            "print(u.urlopen(r, timeout=5).read().decode())",
            metrics_token,
        ).stdout
        sent += sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith('octomail_sends_total{status="sent"}')
        )
    assert sent == 20


def _env_file(stack: list[str]) -> str:
    env = Path(stack[stack.index("--env-file") + 1]).read_text()
    return next(
        line.split("=", 1)[1] for line in env.splitlines() if line.startswith("OCTOMAIL_ENV_FILE=")
    )
