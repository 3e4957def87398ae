"""A throwaway Dovecot IMAP server in a temporary directory (used by the tests and by
bench/inbound.py). Config per /work/shared/TIPS.md; works as root, as CI runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from imap_tools import MailBoxUnencrypted

from tests.support.net import free_port, wait_port

PASSWORD = "secret"


class DovecotMissing(RuntimeError):
    pass


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
    port = 0
  }}
}}
"""


@dataclass
class Dovecot:
    dir: Path
    port: int
    process: subprocess.Popen[bytes]
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


def start_dovecot(base: Path) -> Dovecot:
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not Path(binary).exists():
        raise DovecotMissing("dovecot is not installed (scripts/system-deps installs it)")
    base.mkdir(parents=True, exist_ok=True)
    (base / "run").mkdir()
    (base / "mail").mkdir()
    (base / "users").write_text(
        "".join(f"box{n}:{{PLAIN}}{PASSWORD}::::::\n" for n in range(1, 2001))
    )
    os.chmod(base, 0o755)
    os.chmod(base / "users", 0o644)
    shutil.chown(base / "mail", "nobody", "nogroup")
    port = free_port()
    (base / "dovecot.conf").write_text(DOVECOT_CONF.format(dir=base, port=port))
    process = subprocess.Popen(
        [binary, "-F", "-c", str(base / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
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
