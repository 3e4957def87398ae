"""`octomail user list|disable|enable|set-role|reset-password` and `octomail token
list|revoke`: accounts can be taken back from the terminal, with clear errors (exit 1, one
line, no traceback) for unknown users and tokens."""

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.models import Role
from tests.test_cli import octomail

runner = CliRunner()


def run(*args: str, input: str | None = None):
    return runner.invoke(cli, list(args), input=input)


def _account(email: str, role: Role, token_name: str = "laptop") -> str:
    from app.db import session_scope
    from app.users import create_token, create_user

    with session_scope() as s:
        user = create_user(s, email=email, password="long enough pw", role=role)
        return create_token(s, user=user, name=token_name)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _can_log_in(email: str, password: str) -> bool:
    from app.db import session_scope
    from app.users import authenticate

    with session_scope() as s:
        return authenticate(s, email=email, password=password) is not None


def test_user_list_shows_every_account(settings_env):
    _account("boss@example.org", Role.ADMIN)
    _account("ed@example.org", Role.EDITOR)
    out = run("user", "list")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["id", "email", "role", "active", "created"]
    assert lines[1].split()[:4] == ["1", "boss@example.org", "admin", "yes"]
    assert lines[2].split()[:4] == ["2", "ed@example.org", "editor", "yes"]
    assert "hash" not in out.stdout
    assert "argon2" not in out.stdout


def test_disable_refuses_the_users_tokens_at_once_and_enable_brings_them_back(settings_env, client):
    _account("boss@example.org", Role.ADMIN)
    token = _account("ed@example.org", Role.EDITOR)
    assert client.get("/api/v1/topics", headers=_bearer(token)).status_code == 200
    out = run("user", "disable", "Ed@Example.org")
    assert out.exit_code == 0, out.output
    assert "ed@example.org: editor, disabled" in out.stdout
    assert client.get("/api/v1/topics", headers=_bearer(token)).status_code == 401
    assert not _can_log_in("ed@example.org", "long enough pw")
    assert run("user", "list").stdout.splitlines()[2].split()[3] == "no"
    refused = run("token", "create", "--user", "ed@example.org", "--name", "another")
    assert refused.exit_code == 1
    assert "disabled" in refused.output
    assert run("user", "enable", "2").exit_code == 0  # by id, too
    assert client.get("/api/v1/topics", headers=_bearer(token)).status_code == 200
    assert run("token", "create", "--user", "ed@example.org", "--name", "another").exit_code == 0


def test_set_role_takes_effect_on_the_next_request(settings_env, client):
    _account("boss@example.org", Role.ADMIN)
    token = _account("ed@example.org", Role.EDITOR)
    body = {"slug": "news", "name": "News"}
    out = run("user", "set-role", "ed@example.org", "viewer")
    assert out.exit_code == 0, out.output
    assert client.post("/api/v1/topics", json=body, headers=_bearer(token)).status_code == 403
    assert run("user", "set-role", "ed@example.org", "admin").exit_code == 0
    assert client.get("/api/v1/users", headers=_bearer(token)).status_code == 200
    bad = run("user", "set-role", "ed@example.org", "owner")
    assert bad.exit_code == 2
    assert "owner" in bad.stderr


def test_the_last_active_admin_cannot_be_disabled_or_demoted(settings_env, client):
    token = _account("boss@example.org", Role.ADMIN)
    for args in (
        ["user", "disable", "boss@example.org"],
        ["user", "set-role", "boss@example.org", "editor"],
    ):
        out = run(*args)
        assert out.exit_code == 1
        assert out.stderr.startswith("error: boss@example.org is the last active admin")
        assert "Traceback" not in out.output
    assert client.get("/api/v1/users", headers=_bearer(token)).status_code == 200


def test_reset_password_asks_twice_or_reads_stdin(settings_env):
    _account("ed@example.org", Role.EDITOR)
    out = run(
        "user", "reset-password", "ed@example.org", input="brand new password\nbrand new password\n"
    )
    assert out.exit_code == 0, out.output
    assert "brand new password" not in out.output
    assert _can_log_in("ed@example.org", "brand new password")
    assert not _can_log_in("ed@example.org", "long enough pw")

    mismatch = run(
        "user",
        "reset-password",
        "ed@example.org",
        input="first password 1\nsecond password\nthird password 3\nthird password 3\n",
    )
    assert mismatch.exit_code == 0
    assert "do not match" in mismatch.output.lower()
    assert _can_log_in("ed@example.org", "third password 3")

    piped = run(
        "user",
        "reset-password",
        "ed@example.org",
        "--password-stdin",
        input="from a password manager\r\n",
    )  # a CRLF pipe
    assert piped.exit_code == 0, piped.output
    assert _can_log_in("ed@example.org", "from a password manager")

    short = run("user", "reset-password", "ed@example.org", "--password-stdin", input="short\n")
    assert short.exit_code == 1
    assert "10 characters" in short.stderr
    assert _can_log_in("ed@example.org", "from a password manager")


def test_token_list_and_revoke(settings_env, client):
    boss = _account("boss@example.org", Role.ADMIN, "deploy")
    token = _account("ed@example.org", Role.EDITOR, "newsletter script")
    assert client.get("/api/v1/topics", headers=_bearer(token)).status_code == 200
    out = run("token", "list")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["id", "user", "name", "created", "last", "used", "revoked"]
    assert lines[1].split()[:3] == ["1", "boss@example.org", "deploy"]
    assert lines[2].startswith("2")
    assert "ed@example.org" in lines[2]
    assert "newsletter script" in lines[2]
    assert lines[2].rstrip().endswith("-")
    assert token not in out.stdout
    assert boss not in out.stdout
    assert run("token", "list", "--user", "ed@example.org").stdout.count("\n") == 2

    revoked = run("token", "revoke", "2")
    assert revoked.exit_code == 0
    assert "token 2 (newsletter script) revoked" in revoked.stdout
    assert client.get("/api/v1/topics", headers=_bearer(token)).status_code == 401
    assert client.get("/api/v1/topics", headers=_bearer(boss)).status_code == 200
    assert not run("token", "list").stdout.splitlines()[2].rstrip().endswith("-")


@pytest.mark.parametrize(
    "args",
    [
        ["user", "disable", "nobody@example.org"],
        ["user", "enable", "42"],
        ["user", "set-role", "nobody@example.org", "viewer"],
        ["user", "reset-password", "nobody@example.org", "--password-stdin"],
        ["user", "disable", "99999999999999999999"],
        ["user", "disable", "\u00b2"],
        ["token", "revoke", "42"],
        ["token", "revoke", "99999999999999999999"],
        ["token", "list", "--user", "nobody@example.org"],
    ],
)
def test_unknown_users_and_tokens_are_clear_errors(settings_env, args):
    out = run(*args, input="long enough password\n")
    assert out.exit_code == 1, out.output
    assert out.stderr.startswith("error: no ")
    assert "Traceback" not in out.output
    assert isinstance(out.exception, SystemExit)


@pytest.mark.one_database  # a real process's dialogue; the account rules run on both in tests/api
def test_as_a_real_process(settings_env, client):
    """The installed command: prompts twice on a terminal-less stdin, exit codes, stderr."""
    _account("boss@example.org", Role.ADMIN)
    token = _account("ed@example.org", Role.EDITOR)
    out = octomail(
        "user",
        "reset-password",
        "ed@example.org",
        stdin="a password typed twice\na password typed twice\n",
    )
    assert out.returncode == 0, out.stderr
    assert _can_log_in("ed@example.org", "a password typed twice")
    out = octomail("token", "revoke", "2")
    assert out.returncode == 0, out.stderr
    assert client.get("/api/v1/topics", headers=_bearer(token)).status_code == 401
    missing = octomail("user", "disable", "nobody@example.org")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: no user nobody@example.org"
