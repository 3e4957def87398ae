"""ImapSource against Dovecot: one FETCH brings small mail whole, larger allowed mail is
fetched again whole, mail over the limit only by its head; moves use UID MOVE."""

from __future__ import annotations

from app.inbound.sources import HEAD_BYTES, ImapSource
from tests.support.dovecot import Dovecot


def _mail(n: int, size: int) -> bytes:
    head = (
        f"From: a{n}@example.com\r\nTo: info@example.org\r\nSubject: s{n}\r\n"
        f"Message-ID: <m{n}@example.com>\r\n\r\n"
    ).encode()
    line = b"x" * 76 + b"\r\n"
    return head + line * max(0, (size - len(head)) // len(line))


def test_fetch_sizes_heads_and_whole_messages(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    raws = [_mail(1, 600), _mail(2, HEAD_BYTES + 5000), _mail(3, 3 * HEAD_BYTES), _mail(4, 900)]
    with dovecot.connect(user) as box:
        for raw in raws:
            box.append(raw, "INBOX")
    source = ImapSource(dovecot.url(user))
    source.open()
    try:
        assert "MOVE" in source.box.client.capabilities  # type: ignore[union-attr]
        uids = source.list_uids()
        fetched = source.fetch(uids, max_bytes=2 * HEAD_BYTES)
        assert [f.uid for f in fetched] == uids
        assert [f.size for f in fetched] == [len(r) for r in raws]
        assert [f.complete for f in fetched] == [True, True, False, True]
        assert [f.raw for f in fetched] == [raws[0], raws[1], raws[2][:HEAD_BYTES], raws[3]]
        assert source.fetch(uids[1:2], max_bytes=HEAD_BYTES + 10)[0].raw == raws[1][:HEAD_BYTES]
        source.move(uids[:3], "Processed")
        assert source.list_uids() == uids[3:]
    finally:
        source.close()
    with dovecot.connect(user) as box:
        box.folder.set("Processed")
        assert sorted(m.obj["Message-ID"] for m in box.fetch(mark_seen=False)) == [
            "<m1@example.com>",
            "<m2@example.com>",
            "<m3@example.com>",
        ]


def test_mail_a_person_flagged_deleted_is_neither_read_nor_expunged(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    with dovecot.connect(user) as box:
        for n in range(3):
            box.append(_mail(n, 600), "INBOX")
        flagged = box.uids()[1]
        # Deleted in a mail client, not yet expunged (imap-tools' flag() would expunge).
        box.client.uid("STORE", flagged, "+FLAGS", r"(\Deleted)")
    for without_uidplus in (False, True):
        if without_uidplus:
            with dovecot.connect(user) as box:
                for n in range(3, 5):
                    box.append(_mail(n, 600), "INBOX")
        source = ImapSource(dovecot.url(user))
        source.open()
        try:
            client = source.box.client  # type: ignore[union-attr]
            if without_uidplus:  # an old server: COPY + \Deleted, and no plain EXPUNGE
                client.capabilities = tuple(
                    c for c in client.capabilities if c not in ("MOVE", "UIDPLUS")
                )
            uids = source.list_uids()
            assert len(uids) == 2
            assert flagged not in uids
            source.move(uids, "Processed")
            assert source.list_uids() == []
        finally:
            source.close()
    with dovecot.connect(user) as box:
        box.folder.set("INBOX")
        assert flagged in box.uids()  # still there, for its owner to expunge or undelete
        assert box.uids("UNDELETED") == []
        box.folder.set("Processed")
        assert len(box.uids()) == 4
