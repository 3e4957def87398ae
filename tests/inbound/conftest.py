"""Inbound fixtures: a throwaway Dovecot IMAP server, Maildir and IMAP mailboxes behind one
test interface, an SMTP catcher for acknowledgements, and the subscribers the cases expect."""

from __future__ import annotations

import email
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from pathlib import Path

import pytest
from imap_tools import MailBoxUnencrypted

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
FIXTURES = Path(__file__).parent / "fixtures"
PASSWORD = "secret"
_users = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


DOVECOT_CONF = """\
instance_name = test-dovecot-{port}
base_dir = {dir}/run
state_dir = {dir}/run
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {dir}/dovecot.log
mail_location = maildir:{dir}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={dir}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@dataclass
class Dovecot:
    dir: Path
    port: int
    process: subprocess.Popen[bytes]

    def add_user(self) -> str:
        """A fresh, empty mailbox (users are written up front: Dovecot re-reads the users
        file only when its mtime changes, which can miss writes within the same second)."""
        return f"box{next(_users)}"

    def url(self, user: str, folder: str = "INBOX") -> str:
        return f"imap://{user}:{PASSWORD}@127.0.0.1:{self.port}/{folder}"

    def connect(self, user: str) -> MailBoxUnencrypted:
        return MailBoxUnencrypted("127.0.0.1", self.port, timeout=30).login(user, PASSWORD)


def start_dovecot(base: Path) -> Dovecot:
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not Path(binary).exists():
        if IN_CI:
            pytest.fail("dovecot is not installed (scripts/system-deps installs it)")
        pytest.skip("dovecot is not installed (scripts/system-deps installs it)")
    base.mkdir(parents=True, exist_ok=True)
    (base / "run").mkdir()
    (base / "mail").mkdir()
    (base / "users").write_text("".join(f"box{n}:{{PLAIN}}{PASSWORD}::::::\n"
                                        for n in range(1, 2001)))
    os.chmod(base, 0o755)
    os.chmod(base / "users", 0o644)
    shutil.chown(base / "mail", "nobody", "nogroup")
    port = free_port()
    (base / "dovecot.conf").write_text(DOVECOT_CONF.format(dir=base, port=port))
    process = subprocess.Popen([binary, "-F", "-c", str(base / "dovecot.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port)
    except RuntimeError:
        process.kill()
        log = (base / "dovecot.log").read_text() if (base / "dovecot.log").exists() else ""
        raise RuntimeError(f"dovecot did not start: {log[-2000:]}") from None
    return Dovecot(base, port, process)


def stop_dovecot(server: Dovecot) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    # Not under pytest's tmp dir: that is 0700 and Dovecot's auth process (user dovecot)
    # must reach the users file.
    base = Path(tempfile.mkdtemp(prefix="octomail-dovecot-"))
    os.chmod(base, 0o755)
    server = start_dovecot(base / "d")
    yield server
    stop_dovecot(server)
    shutil.rmtree(base, ignore_errors=True)


def message_ids(raws: list[bytes]) -> list[str]:
    return [str(email.message_from_bytes(r, policy=policy.default).get("Message-ID", "")).strip()
            for r in raws]


class Mailbox:
    """The info mailbox under test, whatever its kind: deliver mail, look into folders."""

    kind: str
    env: dict[str, str]

    def deliver(self, raws: list[bytes]) -> None:
        raise NotImplementedError

    def folder(self, name: str) -> list[bytes]:
        raise NotImplementedError

    def folder_ids(self, name: str) -> list[str]:
        return message_ids(self.folder(name))


@dataclass
class ImapMailbox(Mailbox):
    server: Dovecot
    user: str
    kind: str = "imap"
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = {"OCTOMAIL_IMAP_URL": self.server.url(self.user)}

    def deliver(self, raws: list[bytes]) -> None:
        # One connection, as a mail client or an MDA appending into the mailbox would.
        with self.server.connect(self.user) as box:
            for raw in raws:
                box.append(raw, "INBOX")

    def folder(self, name: str) -> list[bytes]:
        with self.server.connect(self.user) as box:
            if not box.folder.exists(name):
                return []
            box.folder.set(name)
            return [m.obj.as_bytes() for m in box.fetch(mark_seen=False, bulk=True)]


@dataclass
class MaildirMailbox(Mailbox):
    root: Path
    kind: str = "maildir"
    env: dict[str, str] = field(default_factory=dict)
    _n: itertools.count = field(default_factory=lambda: itertools.count(1))

    def deliver(self, raws: list[bytes]) -> None:
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for raw in raws:
            # Write to tmp/ then rename into new/: how an MDA delivers (never a partial file).
            name = f"{time.time_ns()}.M{next(self._n)}P{os.getpid()}.testhost"
            (self.root / "tmp" / name).write_bytes(raw)
            os.rename(self.root / "tmp" / name, self.root / "new" / name)

    def folder(self, name: str) -> list[bytes]:
        base = self.root if name == "INBOX" else self.root / f".{name}"
        return [p.read_bytes() for sub in ("new", "cur") if (base / sub).exists()
                for p in sorted((base / sub).iterdir())]


@pytest.fixture(params=["imap", "maildir"])
def mailbox(request: pytest.FixtureRequest, settings_env: dict[str, str],
            monkeypatch: pytest.MonkeyPatch) -> Mailbox:
    """The info mailbox, once as Dovecot IMAP and once as the local Maildir."""
    from app.settings import get_settings

    box: Mailbox
    if request.param == "imap":
        server = request.getfixturevalue("dovecot")
        box = ImapMailbox(server, server.add_user())
    else:
        box = MaildirMailbox(Path(settings_env["OCTOMAIL_VAR_DIR"]) / "mail" / "inbox")
    for key, value in box.env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return box


@dataclass
class Catcher:
    """Mail the poller sends (acknowledgements, confirmations), caught by aiosmtpd."""

    messages: list[email.message.EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001, ANN201
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Catcher]:
    from aiosmtpd.controller import Controller

    from app.settings import get_settings

    handler = Catcher()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    monkeypatch.setenv("OCTOMAIL_SMTP_URLS", f"smtp://127.0.0.1:{controller.port}")
    get_settings.cache_clear()
    yield handler
    controller.stop()


def load_fixture(name: str, values: dict[str, str] | None = None) -> bytes:
    raw = (FIXTURES / f"{name}.eml").read_bytes()
    for key, value in (values or {}).items():
        raw = raw.replace(key.encode(), value.encode())
    return raw
