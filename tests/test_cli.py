"""The octomail command line, run as a user would (a real subprocess)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def octomail(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        input=stdin,
        text=True,
        capture_output=True,
        cwd=ROOT,
        env=os.environ.copy(),
        timeout=120,
    )


def test_help_explains_each_command(env):
    out = octomail("--help")
    assert out.returncode == 0
    for command in (
        "serve",
        "migrate",
        "import",
        "export",
        "user",
        "token",
        "poll",
        "poller",
        "campaign",
        "worker",
    ):
        assert command in out.stdout


@pytest.mark.one_database  # the commands' dialogue; tests/api/test_accounts_api.py runs accounts on both
def test_user_and_token_creation(settings_env, client):
    created = octomail(
        "user",
        "create",
        "--email",
        "Boss@Example.org",
        "--role",
        "admin",
        "--password-stdin",
        stdin="a very good password\n",
    )
    assert created.returncode == 0, created.stderr
    assert "a very good password" not in created.stdout + created.stderr
    token = octomail("token", "create", "--user", "boss@example.org", "--name", "ci")
    assert token.returncode == 0, token.stderr
    value = token.stdout.strip()
    assert "\n" not in value
    assert value.startswith("octo_")
    response = client.get("/api/v1/topics", headers={"Authorization": f"Bearer {value}"})
    assert response.status_code == 200
    again = octomail(
        "user",
        "create",
        "--email",
        "boss@example.org",
        "--password-stdin",
        stdin="another good password\n",
    )
    assert again.returncode == 1
    assert "already exists" in again.stderr
    short = octomail(
        "user", "create", "--email", "x@example.org", "--password-stdin", stdin="short\n"
    )
    assert short.returncode == 1
    assert "10 characters" in short.stderr


def test_import_and_export(settings_env, tmp_path, session):
    from tests.support.subscribers import make_topic

    make_topic(session, "news")
    session.close()
    source = tmp_path / "people.csv"
    source.write_text("email,name,city\nann@example.org,Ann,Lyon\nbad-address,B,X\n")
    out = octomail("import", str(source), "--topic", "news", "--consent-source", "fair 2026")
    assert out.returncode == 1, out.stderr  # a row was rejected; the good one still went in
    assert "line 3: invalid email address" in out.stderr
    assert "1 imported" in out.stdout
    target = tmp_path / "out.csv"
    exported = octomail("export", str(target))
    assert exported.returncode == 0, exported.stderr
    lines = target.read_text().splitlines()
    assert lines[0].startswith("id,email,name")
    assert "ann@example.org" in lines[1]


@pytest.mark.parametrize("args", [["import", "missing.csv", "--consent-source", "x"]])
def test_errors_are_clear(env, args):
    out = octomail(*args)
    assert out.returncode != 0
    assert "does not exist" in out.stderr


def test_import_fails_on_rejected_rows_and_names_duplicate_lines(settings_env, tmp_path):
    source = tmp_path / "people.csv"
    source.write_text("email,name\nann@example.org,Ann\nbad-address,B\nANN@example.org,Ann again\n")
    out = octomail("import", str(source), "--consent-source", "fair 2026")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "line 3: invalid email address" in out.stderr
    assert "line 4: duplicate of line 2" in out.stderr
    assert "3 rows: 1 imported, 1 skipped (0 suppressed), 1 error" in out.stdout


def test_import_of_one_good_row_says_row_and_exits_0(settings_env, tmp_path):
    source = tmp_path / "people.csv"
    source.write_text("email\nann@example.org\n")
    out = octomail("import", str(source), "--consent-source", "fair 2026")
    assert out.returncode == 0, out.stderr
    assert "1 row: 1 imported, 0 skipped (0 suppressed), 0 errors" in out.stdout


@pytest.mark.one_database  # a terminal's width, whatever the database
@pytest.mark.parametrize("columns", [80, 200])
def test_import_progress_fits_the_terminal(settings_env, tmp_path, columns):
    name = "subscribers-from-the-autumn-fair-in-lyon-and-the-spring-fair-in-nantes-2026.csv"
    source = tmp_path / name
    source.write_text("email\nann@example.org\n")
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "import", str(source), "--consent-source", "fair"],
        text=True,
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": str(columns)},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) == columns  # the bar takes the whole width
    assert name in out.stdout.replace("\n", "")  # wrapped, never cut to "…"
    assert "…" not in out.stdout
    assert "1 row: 1 imported" in out.stdout
