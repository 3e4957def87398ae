"""deploy/ is checked without Docker: the compose file's services run real `octomail`
commands with options that exist, every setting it or the example env file names is a real
setting, the Dockerfile copies what the app reads at run time, and systemd accepts the units
(`systemd-analyze verify`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import cli
from app.settings import Settings
from app.web_paths import LOCALE_DIR, STATIC_DIR, TEMPLATE_DIR

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OCTOMAIL_SERVICES = {"migrate", "web", "worker", "poller"}


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _defaults(text: str) -> str:
    """Compose's ${NAME:-default} with its default (what runs when nothing is set)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


def _settings_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.add(alias if isinstance(alias, str) else f"OCTOMAIL_{name.upper()}")
    return names


def _accepts(argv: list[str]) -> None:
    """The command and its options exist (click parses every option before --help acts)."""
    assert argv[0] == "octomail", argv
    result = CliRunner().invoke(cli, [*argv[1:], "--help"])
    assert result.exit_code == 0, (argv, result.output)


def test_the_compose_stack_has_each_role_running_a_real_command() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", *OCTOMAIL_SERVICES}
    for name in OCTOMAIL_SERVICES:
        _accepts([_defaults(part) for part in services[name]["command"]])
    web = services["web"]
    # The web's processes run neither a worker nor a poller: those are their own services.
    assert web["environment"]["OCTOMAIL_EMBEDDED_WORKER"] == "false"
    assert web["environment"]["OCTOMAIL_EMBEDDED_POLLER"] == "false"
    assert "--workers=2" in [_defaults(p) for p in web["command"]]
    assert web["ports"] == ["127.0.0.1:${OCTOMAIL_WEB_PORT:-8000}:8000"]  # TLS proxy in front
    assert services["worker"]["deploy"]["replicas"] == "${OCTOMAIL_WORKERS:-2}"
    for name in OCTOMAIL_SERVICES - {"migrate"}:
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
        assert services[name]["read_only"] is True
        assert services[name]["cap_drop"] == ["ALL"]


def test_every_setting_named_in_deploy_is_a_real_one() -> None:
    known = _settings_names()
    named = set(
        re.findall(r"^(OCTOMAIL_[A-Z_]+)=", (DEPLOY / "octomail.env.example").read_text(), re.M)
    )
    for service in _compose()["services"].values():
        named |= {k for k in service.get("environment") or {} if k.startswith("OCTOMAIL_")}
    for unit in (DEPLOY / "systemd").iterdir():
        named |= set(re.findall(r"^Environment=(OCTOMAIL_[A-Z_]+)=", unit.read_text(), re.M))
    named -= {"OCTOMAIL_CONFIG"}  # read before the settings: where the file is
    assert len(named) > 10
    assert sorted(named - known) == []


def test_the_image_holds_what_the_app_reads_at_run_time() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copied = {
        src
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for src in line.split()[1:-1]
    }
    for src in copied:
        assert (ROOT / src).exists(), src
    needed = {"app", "migrations", "alembic.ini", "uv.lock", "pyproject.toml"}
    needed |= {p.relative_to(ROOT).as_posix() for p in (TEMPLATE_DIR, STATIC_DIR, LOCALE_DIR)}
    assert needed <= copied
    assert "uv sync --frozen --no-dev" in dockerfile  # exactly uv.lock's versions
    assert "\nUSER octomail\n" in dockerfile


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    octomail = shutil.which("octomail", path=str(ROOT / ".venv" / "bin")) or "/bin/true"
    units = []
    for unit in sorted((DEPLOY / "systemd").iterdir()):
        text = unit.read_text()
        argv = re.search(r"^ExecStart=(.*)$", text, re.M).group(1).split()
        assert argv[0] == "/opt/octomail/.venv/bin/octomail"
        _accepts(["octomail", *[a.replace("%i", "01") for a in argv[1:]]])
        name = unit.name.replace("@.", "@01.")
        (tmp_path / name).write_text(text.replace("/opt/octomail/.venv/bin/octomail", octomail))
        units.append(str(tmp_path / name))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # An unknown or misspelt option is only a warning (exit 0): none is allowed either.
    assert (result.returncode, result.stderr) == (0, "")
