"""Byte-level MIME building blocks for the fast renderer: header encoding and QP pieces.

The renderer builds each message as bytes directly (no email.message objects): these helpers
produce RFC 5322/2045/2047-conformant pieces with CRLF line endings. They are pure and small so
the tests can parse their output back with email.policy.default.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64encode
from email.utils import parseaddr

import idna

from app.errors import InvalidInput
from app.mail.addresses import envelope_address

# Control characters (and Unicode line separators) must never reach a header: they are how
# a name like "Eve\r\nBcc: x@y" would inject a header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_ATOM_PHRASE = re.compile(r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]*$")
_ADDRESS = re.compile(r"^[^\s<>()\[\],;:\"\\@]+@[^\s<>()\[\],;:\"\\@]+$")
QP_LINE = 76


def clean_text(value: str) -> str:
    """One header-safe line: control characters become spaces, runs of blanks collapse."""
    return " ".join(_CONTROL.sub(" ", value).split())


def has_control(value: str) -> bool:
    """True when `value` holds a character that must never reach a header."""
    return _CONTROL.search(value) is not None


def sender_address(value: str) -> tuple[str, str]:
    """(display name, address) of a From/Reply-To value, read exactly as it is sent; the
    campaign validation uses this same reading, so what is checked is what goes out."""
    return parseaddr(clean_text(value))


def encoded_words(text: str, first_room: int = 60) -> str:
    """RFC 2047 UTF-8 B-encoded words, folded with CRLF+SPACE; never splits a character."""
    raw = text.encode("utf-8")
    limit = max(12, min(45, (first_room - 12) * 3 // 4))
    words: list[str] = []
    start = 0
    while True:
        end = start + limit
        if end >= len(raw):
            words.append(f"=?utf-8?b?{b64encode(raw[start:]).decode()}?=")
            return "\r\n ".join(words)
        while 0x80 <= raw[end] < 0xC0:  # back off to the first byte of a UTF-8 sequence
            end -= 1
        words.append(f"=?utf-8?b?{b64encode(raw[start:end]).decode()}?=")
        start, limit = end, 45  # later words start on their own folded line


def phrase(value: str, room: int = 60) -> str:
    """A display name for From/To/List-Id: atom, quoted string or encoded words."""
    value = clean_text(value)
    if not value:
        return ""
    if value.isascii():
        if _ATOM_PHRASE.match(value) and "=?" not in value:
            return value
        if "=?" not in value:
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return encoded_words(value, room)


def unstructured(value: str, room: int = 68) -> str:
    """An unstructured header value (Subject): plain ASCII when safe, else encoded words."""
    value = clean_text(value)
    if value.isascii() and "=?" not in value and len(value) < 900:
        return value
    return encoded_words(value, room)


def recipient_address(address: str) -> str:
    """The address for the envelope: the domain in IDNA A-labels (ASCII), the local part as
    stored (NFC). A non-ASCII local part remains: that message needs SMTPUTF8 (RFC 6531),
    which the transport uses when the server offers it. Unsafe addresses are refused."""
    address = address.strip()
    if not _ADDRESS.match(address) or _CONTROL.search(address):
        raise InvalidInput(f"not a deliverable address: {address!r}")
    return envelope_address(address)


def ascii_address(address: str) -> str:
    """A sender's address (From, Reply-To, the bounce address) as ASCII: every message
    carries it, so one needing SMTPUTF8 is refused rather than failing every send."""
    address = recipient_address(address)
    if not address.isascii():
        raise InvalidInput(
            f"a sender address needs SMTPUTF8, which not every server offers: {address!r}"
        )
    return address


def shown_address(address: str) -> str:
    """An envelope address as a person reads it in a header: A-labels back to Unicode
    (RFC 6532 allows UTF-8 in headers of a message sent with SMTPUTF8)."""
    local, _, domain = address.rpartition("@")
    try:
        return f"{local}@{idna.decode(domain)}" if "xn--" in domain else address
    except idna.IDNAError:
        return address


def to_header(name: str, address: str) -> bytes:
    """The To field: ASCII as usual; for a non-ASCII address (an SMTPUTF8 message) the
    address in UTF-8 as RFC 6532 allows, the display name still in encoded words."""
    if address.isascii():
        return header("To", mailbox(name, address))
    return f"To: {mailbox(name, shown_address(address))}\r\n".encode()


def mailbox(name: str, address: str) -> str:
    """`Name <addr>` (or the bare address) for From/To/Reply-To."""
    shown = phrase(name)
    return f"{shown} <{address}>" if shown else address


def header(name: str, value: str) -> bytes:
    """One header field as bytes; the value is already safe (ASCII, folded with CRLF SP)."""
    return f"{name}: {value}\r\n".encode("ascii")


# A quoted-printable piece: (bytes, length of its first line, of its last line, multiline).
QPiece = tuple[bytes, int, int, bool]
_QP_VERBATIM = re.compile(r"[!-<>-~][ !-<>-~]{0,70}[!-<>-~]|[!-<>-~]")


def qp_piece(text: str) -> QPiece:
    """Quoted-printable encode one piece of a body on its own (UTF-8, CRLF line breaks)."""
    if _QP_VERBATIM.fullmatch(text):  # the common short ASCII value needs no encoding
        return text.encode("ascii"), len(text), len(text), False
    raw = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(raw, False, True, False)
    # A "." at a line start is left to the transport, which dot-stuffs (RFC 5321 4.5.2).
    first_nl = encoded.find(b"\n")
    if first_nl < 0:
        return encoded, len(encoded), len(encoded), False
    last = len(encoded) - encoded.rfind(b"\n") - 1
    return encoded.replace(b"\n", b"\r\n"), first_nl, last, True


SOFT_BREAK = b"=\r\n"


def join_pieces(pieces: list[QPiece], out: list[bytes]) -> None:
    """Append pieces to `out`, adding a soft line break where a line would pass 76 chars.

    Each piece was encoded on its own; QP lets us break a line anywhere with "=" CRLF, so
    pre-encoded static chunks and freshly encoded personal values join without re-encoding.
    """
    column = 0
    append = out.append
    for data, first, last, multiline in pieces:
        if column and column + first > QP_LINE - 1:
            append(SOFT_BREAK)
            column = 0
        append(data)
        column = last if multiline else column + last
