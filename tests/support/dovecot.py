"""A throwaway Dovecot IMAP server in a temporary directory (used by the tests and by
bench/inbound.py). Config per /work/shared/TIPS.md; works as root, as CI runs."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from imap_tools import MailBoxUnencrypted

from tests.support.net import free_port, wait_port
from tests.support.tls import TlsFiles

PASSWORD = "secret"


class DovecotMissing(RuntimeError):
    pass


DOVECOT_CONF = """\
instance_name = test-dovecot-{port}
base_dir = {dir}/run
state_dir = {dir}/run
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {dir}/dovecot.log
mail_fsync = never
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
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
"""


@dataclass
class Dovecot:
    dir: Path
    port: int  # IMAP, STARTTLS offered when started with TLS files
    process: subprocess.Popen[bytes]
    tls_port: int = 0  # IMAPS (implicit TLS), 0 without TLS files
    _next: int = 0

    def add_user(self) -> str:
        """A fresh, empty mailbox (users are written up front: Dovecot re-reads the users
        file only when its mtime changes, which can miss writes within the same second)."""
        self._next += 1
        return f"box{self._next}"

    def url(self, user: str, folder: str = "INBOX") -> str:
        return f"imap://{user}:{PASSWORD}@127.0.0.1:{self.port}/{folder}"

    def set_uidvalidity(self, user: str, value: int, folder: str = "INBOX") -> None:
        """What a server does when it rebuilds a folder's index: a new UIDVALIDITY."""
        doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
        subprocess.run(
            [
                doveadm,
                "-c",
                str(self.dir / "dovecot.conf"),
                "mailbox",
                "update",
                "-u",
                user,
                "--uid-validity",
                str(value),
                folder,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def connect(self, user: str) -> MailBoxUnencrypted:
        return MailBoxUnencrypted("127.0.0.1", self.port, timeout=30).login(user, PASSWORD)


def _ssl_settings(tls: TlsFiles | None) -> str:
    if tls is None:
        return "ssl = no"
    return f"ssl = yes\nssl_cert = <{tls.cert}\nssl_key = <{tls.key}"


def start_dovecot(base: Path, tls: TlsFiles | None = None) -> Dovecot:
    """Dovecot on a free port; with `tls`, also IMAPS on another and STARTTLS on the first."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "run").mkdir()
    (base / "mail").mkdir()
    (base / "users").write_text(
        "".join(f"box{n}:{{PLAIN}}{PASSWORD}::::::\n" for n in range(1, 2001))
    )
    os.chmod(base, 0o755)
    os.chmod(base / "users", 0o644)
    shutil.chown(base / "mail", "nobody", "nogroup")
    port, tls_port = free_port(), (free_port() if tls else 0)
    conf = DOVECOT_CONF.format(dir=base, port=port, tls_port=tls_port, ssl=_ssl_settings(tls))
    (base / "dovecot.conf").write_text(conf)
    return Dovecot(base, port, _run_dovecot(base, port, tls_port), tls_port)


def _run_dovecot(base: Path, *ports: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not Path(binary).exists():
        raise DovecotMissing("dovecot is not installed (scripts/system-deps installs it)")
    process = subprocess.Popen(
        [binary, "-F", "-c", str(base / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # one process group to stop, children included
    )
    try:
        for port in ports:
            if port:
                wait_port(port)
    except RuntimeError:
        process.kill()
        log = (base / "dovecot.log").read_text() if (base / "dovecot.log").exists() else ""
        raise RuntimeError(f"dovecot did not start: {log[-2000:]}") from None
    return process


def start_again(server: Dovecot) -> None:
    """Start a stopped server again on the same ports and mail store (a restart)."""
    server.process = _run_dovecot(server.dir, server.port, server.tls_port)


@contextmanager
def temporary_dovecot(tls: TlsFiles | None = None) -> Iterator[Dovecot]:
    """A Dovecot in its own directory, removed afterwards. Not under pytest's tmp dir: that
    is 0700 and Dovecot's auth process (user dovecot) must reach the users file."""
    base = Path(tempfile.mkdtemp(prefix="octomail-dovecot-"))
    os.chmod(base, 0o755)
    try:
        server = start_dovecot(base / "d", tls=tls)
    except DovecotMissing:
        shutil.rmtree(base, ignore_errors=True)
        raise
    try:
        yield server
    finally:
        stop_dovecot(server)
        shutil.rmtree(base, ignore_errors=True)


def stop_dovecot(server: Dovecot) -> None:
    """Stop the master and every process it started (its own session): an imap process
    outlives its master otherwise, and keeps serving the connections it has."""
    group = server.process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
