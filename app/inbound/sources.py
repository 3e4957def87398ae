"""Where inbound mail comes from: an IMAP mailbox (imap-tools) or a local Maildir, behind one
small synchronous interface. The poller runs it in a thread (asyncio.to_thread)."""

from __future__ import annotations

import contextlib
import imaplib
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.imap_utf7 import utf7_encode

from app.errors import ConfigurationError
from app.files import private_dir
from app.settings import Settings

HEAD_BYTES = 65536  # what we read of a message too large to classify
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
_TRUE = {"1", "true", "yes", "on"}


@dataclass
class Fetched:
    uid: str
    size: int
    raw: bytes  # the whole message, or only its start when it is over the size limit
    complete: bool = True


class Source(Protocol):
    name: str  # stable key stored in inbound_message.source (no password)

    @property
    def push(self) -> bool:
        """wait() returns early when mail arrives (IDLE, Maildir change)."""
        ...

    def open(self) -> None: ...
    def close(self) -> None: ...
    def uidvalidity(self) -> int: ...
    def list_uids(self) -> list[str]: ...
    def fetch(self, uids: Sequence[str], max_bytes: int) -> list[Fetched]: ...
    def move(self, uids: Sequence[str], folder: str) -> None: ...
    def refile(self, uid: str, message_id: str | None, src: str, dst: str) -> bool: ...
    def recover_moves(self, items: Sequence[tuple[str, str | None]], folder: str) -> None: ...
    def delete_filed(self, items: Sequence[tuple[str, str | None]], folder: str) -> int: ...
    def wait(self, timeout: float, stop: threading.Event) -> None: ...


def source_from_settings(settings: Settings) -> Source:
    """IMAP when OCTOMAIL_IMAP_URL is set, else the Maildir var/mail/inbox."""
    if settings.imap_url.strip():
        return ImapSource(settings.imap_url.strip())
    return MaildirSource(Path(settings.var_dir) / "mail" / "inbox")


def uid_set(uids: Sequence[str]) -> str:
    """Compress numeric UIDs into an IMAP sequence set: 1:5,7,9:12 (short MOVE/FETCH lines)."""
    numbers = sorted({int(u) for u in uids})
    parts: list[str] = []
    start = prev = numbers[0] if numbers else 0
    for n in numbers[1:]:
        if n == prev + 1:
            prev = n
            continue
        parts.append(f"{start}:{prev}" if prev > start else str(start))
        start = prev = n
    if numbers:
        parts.append(f"{start}:{prev}" if prev > start else str(start))
    return ",".join(parts)


def _grouped(items: list[str], cost: Callable[[str], int], budget: int) -> list[list[str]]:
    """Items in order, in groups whose costs add up to at most `budget` (or one item)."""
    groups: list[list[str]] = [[]]
    total = 0
    for item in items:
        if groups[-1] and total + cost(item) > budget:
            groups.append([])
            total = 0
        groups[-1].append(item)
        total += cost(item)
    return [g for g in groups if g]


def _by_bytes(sizes: dict[str, int], budget: int) -> list[list[str]]:
    """UIDs in groups of at most `budget` octets (or one message), so large mail is never
    all in memory at once."""
    return _grouped(list(sizes), sizes.__getitem__, budget)


SEARCH_LINE_OCTETS = 8000
"""Longest UID SEARCH line we send: RFC 7162 asks clients to stay under 8192 octets."""
_SEARCHABLE = re.compile(r"<[\x21\x23-\x5b\x5d-\x7e]{1,400}>")
"""Message-IDs a quoted IMAP string can carry (printable ASCII, no quote, no backslash);
the rare others are moved without looking for a copy."""
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


def _search_groups(message_ids: list[str]) -> list[list[str]]:
    """Message-IDs in groups whose OR-ed search line stays under SEARCH_LINE_OCTETS."""
    # Each costs 'OR ' and 'HEADER Message-ID "..." ' besides itself.
    return _grouped(message_ids, lambda message_id: len(message_id) + 25, SEARCH_LINE_OCTETS)


def _any_message_id(message_ids: list[str]) -> str:
    """One search key for any of these Message-IDs. OR takes two keys, so they form a
    balanced tree: depth log2(n), not n (servers parse search keys recursively)."""
    if len(message_ids) == 1:
        return f'HEADER Message-ID "{message_ids[0]}"'
    half = len(message_ids) // 2
    return f"OR {_any_message_id(message_ids[:half])} {_any_message_id(message_ids[half:])}"


_FETCH_UID = re.compile(rb"UID (\d+)")
_FETCH_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


def _refresh_capabilities(client: imaplib.IMAP4) -> None:
    """Servers announce MOVE and UIDPLUS only after login (Dovecot does), but imaplib keeps
    the greeting's list. Without them, moving falls back to COPY + STORE + a plain EXPUNGE,
    which also purges any message a person had flagged \\Deleted in the INBOX and costs
    three round trips (the copy, the flags, the expunge) instead of one."""
    try:
        typ, data = client.capability()
    except Exception:  # noqa: BLE001 - keep the greeting's list; it still works
        return
    if typ == "OK" and data and isinstance(data[-1], bytes):
        client.capabilities = tuple(data[-1].decode("ascii", "replace").upper().split())


class ImapSource:
    """An IMAP folder: imaps:// (implicit TLS), imap://...?starttls=1, or plain imap:// to
    localhost only; `verify=0` accepts a certificate nobody vouches for (a self-signed test
    server), as OCTOMAIL_SMTP_URLS does. UIDs are the server's; UIDVALIDITY from SELECT."""

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"imap", "imaps"}:
            raise ConfigurationError("OCTOMAIL_IMAP_URL must start with imap:// or imaps://")
        self.host = parts.hostname or "localhost"
        query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
        self.starttls = query.get("starttls", "0") in _TRUE
        self.verify_tls = query.get("verify", "1") in _TRUE
        self.tls = parts.scheme == "imaps"
        if not (self.tls or self.starttls) and self.host not in _LOCAL_HOSTS:
            raise ConfigurationError(
                "plain imap:// is only allowed to localhost: use imaps:// or ?starttls=1"
            )
        self.port = parts.port or (993 if self.tls else 143)
        self.user = unquote(parts.username or "")
        self.password = unquote(parts.password or "")
        self.folder = unquote(parts.path.lstrip("/")) or "INBOX"
        self.timeout = timeout
        self.name = f"imap://{self.user}@{self.host}:{self.port}/{self.folder}"
        self.box: MailBox | MailBoxStartTls | MailBoxUnencrypted | None = None
        self._uidvalidity = 0
        self._folders: set[str] = set()

    # -- connection -------------------------------------------------------------------------
    def open(self) -> None:
        context = ssl.create_default_context()
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        box: MailBox | MailBoxStartTls | MailBoxUnencrypted
        if self.tls:
            box = MailBox(self.host, self.port, timeout=self.timeout, ssl_context=context)
        elif self.starttls:
            box = MailBoxStartTls(self.host, self.port, timeout=self.timeout, ssl_context=context)
        else:
            box = MailBoxUnencrypted(self.host, self.port, timeout=self.timeout)
        box.login(self.user, self.password, initial_folder=None)
        self.box = box
        _refresh_capabilities(box.client)
        self._select()

    def _select(self) -> None:
        client = self._client()
        typ, _ = client.select(utf7_encode(self.folder))
        if typ != "OK":
            raise ConfigurationError(f"cannot open IMAP folder {self.folder!r}")
        _, values = client.response("UIDVALIDITY")
        self._uidvalidity = int(values[0]) if values and values[0] else 0

    def close(self) -> None:
        box, self.box = self.box, None
        if box is None:
            return
        try:
            box.logout()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            with contextlib.suppress(Exception):  # closing a dead socket: nothing to report
                box.client.shutdown()

    def _client(self) -> Any:
        # An imaplib.IMAP4, typed loosely: we pass it mailbox names as modified-UTF-7 bytes,
        # which imaplib takes but its stubs (str only) do not.
        if self.box is None:
            raise ConnectionError("IMAP source is not open")
        return self.box.client

    # -- reading ----------------------------------------------------------------------------
    def uidvalidity(self) -> int:
        return self._uidvalidity

    def list_uids(self) -> list[str]:
        # UNDELETED: a message someone flagged for deletion is not a request, and copies we
        # filed on a server without UIDPLUS wait flagged for the owner's expunge.
        typ, data = self._client().uid("SEARCH", "UNDELETED")
        if typ != "OK":
            raise ConnectionError(f"UID SEARCH failed: {data!r}")
        return data[0].decode().split() if data and data[0] else []

    def _fetch(self, uids: Sequence[str], items: str) -> list[tuple[bytes, bytes | None]]:
        typ, data = self._client().uid("FETCH", uid_set(uids), items)
        if typ != "OK":
            raise ConnectionError(f"UID FETCH failed: {data!r}")
        out: list[tuple[bytes, bytes | None]] = []
        for index, item in enumerate(data):
            if isinstance(item, tuple):
                head = item[0]
                following = data[index + 1] if index + 1 < len(data) else b""
                if (b"UID" not in head or b"RFC822.SIZE" not in head) and isinstance(
                    following, bytes
                ):
                    head += following  # servers may send items after the literal
                out.append((head, item[1]))
            elif isinstance(item, bytes) and b"UID" in item:
                out.append((item, None))
        return out

    def fetch(self, uids: Sequence[str], max_bytes: int) -> list[Fetched]:
        """One FETCH per 500 messages for size and first HEAD_BYTES octets, which is all of
        nearly every message; only those that are larger yet allowed are fetched again whole.
        (Sizes first, then bodies, cost a round trip more per batch.)"""
        if not uids:
            return []
        found: dict[str, Fetched] = {}
        larger: dict[str, int] = {}
        for start in range(0, len(uids), 500):
            for line, body in self._fetch(
                uids[start : start + 500], f"(UID RFC822.SIZE BODY.PEEK[]<0.{HEAD_BYTES}>)"
            ):
                uid, size = _FETCH_UID.search(line), _FETCH_SIZE.search(line)
                if not (uid and size and body is not None):
                    continue
                key, octets = uid.group(1).decode(), int(size.group(1))
                if HEAD_BYTES < octets <= max_bytes:
                    larger[key] = octets
                else:  # whole (size <= HEAD_BYTES), or its head when over the limit
                    found[key] = Fetched(key, octets, body, octets <= max_bytes)
        for group in _by_bytes(larger, 32 << 20):
            for line, body in self._fetch(group, "(UID BODY.PEEK[])"):
                uid = _FETCH_UID.search(line)
                if uid and body is not None and uid.group(1).decode() in larger:
                    key = uid.group(1).decode()
                    found[key] = Fetched(key, larger[key], body, True)
        return [found[u] for u in uids if u in found]

    # -- filing -----------------------------------------------------------------------------
    def _ensure_folder(self, folder: str) -> str:
        if folder in self._folders:
            return folder
        assert self.box is not None
        if not self.box.folder.exists(folder):
            try:
                self.box.folder.create(folder)
            except Exception:  # some servers re-raise "already exists" races
                if not self.box.folder.exists(folder):
                    raise
            self.box.folder.subscribe(folder, True)
        self._folders.add(folder)
        return folder

    def move(self, uids: Sequence[str], folder: str) -> None:
        if not uids:
            return
        self._ensure_folder(folder)
        client = self._client()
        target = utf7_encode(folder)
        for start in range(0, len(uids), 1000):
            chunk = uid_set(uids[start : start + 1000])
            if "MOVE" in client.capabilities:
                typ, data = client.uid("MOVE", chunk, target)
            else:
                typ, data = client.uid("COPY", chunk, target)
                if typ == "OK":
                    _remove_copied(client, chunk)
            if typ != "OK":
                raise ConnectionError(f"moving to {folder} failed: {data!r}")

    def recover_moves(self, items: Sequence[tuple[str, str | None]], folder: str) -> None:
        """File messages recorded before a crash. A MOVE cut off with the connection may have
        copied some already (the server copies, then expunges): for those the copy in
        `folder` is kept and the INBOX leftover expunged, which completes that MOVE; the
        others are moved now. Nothing is lost and nothing ends up twice in the folders.

        The copies are found with a few commands, not one SEARCH per message (a thousand
        round trips, each a scan of the folder): see `_present`."""
        assert self.box is not None
        self._ensure_folder(folder)
        wanted = {m for _u, m in items if m and _SEARCHABLE.fullmatch(m)}
        present: set[str] = set()
        client = self._client()
        if wanted and client.select(utf7_encode(folder), readonly=True)[0] == "OK":
            try:
                present = self._present(sorted(wanted))
            finally:
                self._select()
        leftovers = [u for u, m in items if m in present]
        if leftovers:
            _remove_copied(client, uid_set(leftovers))
        self.move([u for u, m in items if m not in present], folder)

    def _present(self, message_ids: list[str]) -> set[str]:
        """Which of these Message-IDs the selected folder holds: UID SEARCH with the IDs
        OR-ed together, as many as fit in a command line of SEARCH_LINE_OCTETS (about a
        hundred), then one FETCH of the Message-ID header of what matched (a HEADER search
        matches substrings: only an exact ID counts)."""
        client = self._client()
        uids: set[int] = set()
        for group in _search_groups(message_ids):
            typ, data = client.uid("SEARCH", _any_message_id(group))
            if typ != "OK":
                raise ConnectionError(f"UID SEARCH failed: {data!r}")
            uids.update(int(u) for u in (data[0].split() if data and data[0] else []))
        found: set[str] = set()
        ordered = [str(u) for u in sorted(uids)]
        for start in range(0, len(ordered), 1000):
            for _line, header in self._fetch(
                ordered[start : start + 1000], "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
            ):
                if header:
                    found.update(_MESSAGE_ID.findall(header.decode("ascii", "replace")))
        return found & set(message_ids)

    def refile(self, uid: str, message_id: str | None, src: str, dst: str) -> bool:
        """Move one message between folders after a person resolved it. Its UID changed when
        it was filed, so it is found by Message-ID."""
        if not message_id or '"' in message_id or "\\" in message_id:
            return False
        self._ensure_folder(dst)
        client = self._client()
        if client.select(utf7_encode(src))[0] != "OK":
            return False
        try:
            typ, data = client.uid("SEARCH", "HEADER", "Message-ID", f'"{message_id}"')
            found = data[0].decode().split() if typ == "OK" and data and data[0] else []
            if found:
                self.move(found, dst)
            return bool(found)
        finally:
            self._select()

    def delete_filed(self, items: Sequence[tuple[str, str | None]], folder: str) -> int:
        """Delete messages we filed in `folder` once their retention is over (the only
        deletion the poller's side ever makes). Their UIDs changed when they were filed,
        so they are found by exact Message-ID (as `_present`); a message without one
        cannot be told apart and stays. Returns how many Message-IDs were found."""
        wanted = sorted({m for _u, m in items if m and _SEARCHABLE.fullmatch(m)})
        client = self._client()
        if not wanted or client.select(utf7_encode(folder))[0] != "OK":
            return 0
        try:
            uids, found = self._uids_of(wanted)
            for start in range(0, len(uids), 1000):
                _remove_copied(client, uid_set(uids[start : start + 1000]))
        finally:
            self._select()
        return len(found)

    def _uids_of(self, message_ids: list[str]) -> tuple[list[str], set[str]]:
        """UIDs in the selected folder whose Message-ID is exactly one of these."""
        client = self._client()
        candidates: set[int] = set()
        for group in _search_groups(message_ids):
            typ, data = client.uid("SEARCH", _any_message_id(group))
            if typ != "OK":
                raise ConnectionError(f"UID SEARCH failed: {data!r}")
            candidates.update(int(u) for u in (data[0].split() if data and data[0] else []))
        wanted = set(message_ids)
        uids: list[str] = []
        found: set[str] = set()
        ordered = [str(u) for u in sorted(candidates)]
        for start in range(0, len(ordered), 1000):
            for line, header in self._fetch(
                ordered[start : start + 1000], "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
            ):
                uid = _FETCH_UID.search(line)
                ids = set(_MESSAGE_ID.findall((header or b"").decode("ascii", "replace")))
                if uid and ids & wanted:
                    uids.append(uid.group(1).decode())
                    found |= ids & wanted
        return uids, found

    # -- waiting ----------------------------------------------------------------------------
    @property
    def push(self) -> bool:
        """True when the server tells us about new mail (IDLE)."""
        return self.box is not None and "IDLE" in self.box.client.capabilities

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """IDLE when the server has it (returns as soon as mail arrives), else sleep."""
        client = self._client()
        if "IDLE" not in client.capabilities:
            stop.wait(timeout)
            return
        assert self.box is not None
        self.box.idle.wait(timeout=max(0.1, timeout))


class MaildirSource:
    """A local Maildir++ tree: INBOX is the root, folders are `.Name` subdirectories
    (the layout Dovecot uses). The uid is the message file's unique name; uidvalidity is 1."""

    UIDVALIDITY = 1
    push = True  # wait() notices new files itself

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.name = f"maildir:{self.root.resolve()}"
        self._paths: dict[str, Path] = {}

    def open(self) -> None:
        for sub in ("cur", "new", "tmp"):
            private_dir(self.root / sub)

    def close(self) -> None:
        self._paths.clear()

    def uidvalidity(self) -> int:
        return self.UIDVALIDITY

    def list_uids(self) -> list[str]:
        paths: dict[str, Path] = {}
        for sub in ("new", "cur"):
            with os.scandir(self.root / sub) as entries:
                for entry in entries:
                    if entry.is_file() and not entry.name.startswith("."):
                        paths[entry.name.split(":", 1)[0]] = Path(entry.path)
        self._paths = paths
        return sorted(paths)

    def fetch(self, uids: Sequence[str], max_bytes: int) -> list[Fetched]:
        out = []
        for uid in uids:
            path = self._paths.get(uid)
            if path is None:
                continue
            try:
                size = path.stat().st_size
                with path.open("rb") as handle:
                    raw = handle.read(HEAD_BYTES if size > max_bytes else -1)
            except FileNotFoundError:  # moved by someone else meanwhile
                continue
            out.append(Fetched(uid, size, raw, size <= max_bytes))
        return out

    def move(self, uids: Sequence[str], folder: str) -> None:
        target = self.root / f".{folder}"
        for sub in ("cur", "new", "tmp"):
            private_dir(target / sub)
        for uid in uids:
            path = self._paths.pop(uid, None)
            if path is None:
                continue
            name = path.name if ":" in path.name else f"{path.name}:2,"
            with contextlib.suppress(FileNotFoundError):
                os.rename(path, target / "cur" / name)  # atomic: never lost, never doubled

    def refile(self, uid: str, message_id: str | None, src: str, dst: str) -> bool:
        """Move one message between folders; its file name (the uid) never changes."""
        target = self.root / f".{dst}"
        for sub in ("cur", "new", "tmp"):
            private_dir(target / sub)
        for sub in ("cur", "new"):
            folder = self.root / f".{src}" / sub
            for path in folder.glob(f"{uid}*") if folder.exists() else []:
                if path.name.split(":", 1)[0] == uid:
                    os.rename(path, target / "cur" / path.name)
                    return True
        return False

    def recover_moves(self, items: Sequence[tuple[str, str | None]], folder: str) -> None:
        """rename() is atomic: a message is in one place or the other, so just move."""
        self.move([u for u, _m in items], folder)

    def delete_filed(self, items: Sequence[tuple[str, str | None]], folder: str) -> int:
        """Delete messages we filed in `folder` once their retention is over; the file
        name (the uid) never changes, so each is found exactly."""
        wanted = {u for u, _m in items}
        deleted = 0
        for sub in ("cur", "new"):
            directory = self.root / f".{folder}" / sub
            if not directory.is_dir():
                continue
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.split(":", 1)[0] in wanted:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(entry.path)
                            deleted += 1
        return deleted

    def _stamp(self) -> tuple[float, ...]:
        return tuple(os.stat(self.root / sub).st_mtime_ns for sub in ("new", "cur"))

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Return when new/ or cur/ changes (checked 4 times a second) or on timeout."""
        deadline = time.monotonic() + timeout
        before = self._stamp()
        while not stop.is_set() and time.monotonic() < deadline:
            if stop.wait(0.25):
                return
            if self._stamp() != before:
                return


def is_connection_error(exc: BaseException) -> bool:
    """Errors after which the source should be reopened (network, protocol, server)."""

    return isinstance(
        exc, OSError | socket.timeout | imaplib.IMAP4.error | ConnectionError | EOFError
    )


def _remove_copied(client: Any, uids: str) -> None:
    """Take messages already copied to their folder out of the INBOX.

    UID EXPUNGE (UIDPLUS) removes exactly these. Without it they stay flagged \\Deleted
    for the owner's next expunge: a plain EXPUNGE would also destroy any message a person
    had flagged \\Deleted, and the poller never deletes mail. `list_uids` skips them."""
    client.uid("STORE", uids, "+FLAGS.SILENT", r"(\Deleted)")
    if "UIDPLUS" in client.capabilities:
        client.uid("EXPUNGE", uids)
