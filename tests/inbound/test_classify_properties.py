"""Property tests over classify(): generated messages (random headers, bodies, charsets,
MIME trees, broken boundaries) and real fixtures mutated (random bytes spliced in, cut
short, pieces dropped or doubled, the header/body separator removed). No exception escapes,
every message gets a verdict with a reason and a folder, its evidence can be stored, and no
verdict is the catch-all's "classification failed" (a classifier bug hidden as Review).

Derandomized, no example database: the same examples in every run, so CI is stable; a few
seconds in all. OCTOMAIL_FUZZ_EXAMPLES=5000 (and OCTOMAIL_FUZZ_RANDOM=1) searches longer."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.inbound import authres
from app.inbound.classify import PROCESSED, REVIEW, Context, Kind, Verdict, classify
from app.inbound.identity import build_context, campaign_message_id
from app.inbound.intent import read_request
from app.inbound.poller import _clean
from app.links import unsubscribe_token
from app.settings import get_settings

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.eml"))
PROPERTY = settings(
    max_examples=int(os.environ.get("OCTOMAIL_FUZZ_EXAMPLES", "150")),
    deadline=None,
    database=None,
    derandomize=os.environ.get("OCTOMAIL_FUZZ_RANDOM", "") != "1",
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
def ctx(env: dict[str, str]) -> Context:
    return build_context(get_settings())


def check(raw: bytes, ctx: Context) -> Verdict:
    verdict = classify(raw, ctx)
    assert isinstance(verdict, Verdict)
    assert verdict.kind in set(Kind)
    assert verdict.folder in {PROCESSED, REVIEW}
    assert verdict.reason
    assert isinstance(verdict.reason, str)
    assert not verdict.reason.startswith("classification failed"), verdict.reason
    stored = json.dumps(_clean(verdict.evidence))  # what the poller writes
    stored.encode("utf-8")
    for text in (verdict.from_addr, verdict.subject, verdict.message_id, verdict.reason):
        _clean(text).encode("utf-8")
    return verdict


# ---- generated messages ---------------------------------------------------------------

_NAMES = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Auto-Submitted",
    "Precedence",
    "Return-Path",
    "Content-Type",
    "Content-Transfer-Encoding",
    "MIME-Version",
    "Authentication-Results",
    "Delivered-To",
    "X-Original-To",
    "List-Id",
    "X-Autoreply",
    "Date",
    "Received",
    "Content-Disposition",
    "Sender",
    "Reply-To",
]
_CHARSETS = [
    "utf-8",
    "us-ascii",
    "iso-8859-1",
    "windows-1252",
    "koi8-r",
    "utf-7",
    "utf-16",
    "shift_jis",
    "gb2312",
    "unknown-8bit",
    "x-bogus",
    "",
    '"utf-8',
    "utf-8'en'",
]
_TYPES = [
    "text/plain",
    "text/html",
    "multipart/mixed",
    "multipart/alternative",
    "multipart/report",
    "message/rfc822",
    "message/delivery-status",
    "message/feedback-report",
    "application/octet-stream",
    "text/rfc822-headers",
    "",
    "text",
    "multipart/",
    "/",
]
_WORDS = [
    "unsubscribe",
    "do not unsubscribe me",
    "désabonnez-moi",
    "ne me désabonnez pas",
    "bitte nicht abmelden",
    "darme de baja",
    "stop",
    "remove me",
    "x@example.com",
    "info@example.org",
    "info+tok.en@example.org",
    "-- ",
    "> quoted",
    "On Mon wrote:",
    "Best regards,",
    "Sent from my iPhone",
    "If you no longer wish to receive",
    "mx.example.org; dmarc=pass header.from=example.com",
    "=?utf-8?b?w6k=?=",
    "=?x-bogus?q?=FF?=",
    "=?utf-8?q?",
    "\u2028",
    "\x00",
    "\ud800",
    "é",
    "<",
    ">",
    "(",
    ")",
    '"',
    ";",
    "=",
    "\\",
]
_text = st.one_of(st.text(max_size=60), st.lists(st.sampled_from(_WORDS), max_size=6).map(" ".join))


@st.composite
def _header(draw: st.DrawFn) -> str:
    name = draw(st.one_of(st.sampled_from(_NAMES), st.text("abcXYZ-_:0 ", min_size=1, max_size=12)))
    if name == "Content-Type":
        value = draw(st.sampled_from(_TYPES)) + draw(
            st.sampled_from(
                [
                    "",
                    "; charset=" + draw(st.sampled_from(_CHARSETS)),
                    '; boundary="b1"',
                    "; boundary=",
                    "; report-type=delivery-status",
                    "; report-type=feedback-report",
                    '; charset="utf-8"; boundary=b2',
                ]
            )
        )
    else:
        value = draw(_text)
    fold = draw(st.sampled_from(["", "\r\n\t", "\n ", "\r\n"]))
    return f"{name}: {value[:30]}{fold}{value[30:]}"


@st.composite
def _body(draw: st.DrawFn, depth: int = 0) -> bytes:
    kind = draw(st.sampled_from(["text", "bytes", "multipart"] if depth < 2 else ["text"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "text":
        charset = draw(st.sampled_from(["utf-8", "latin-1", "cp1252", "koi8-r", "utf-16"]))
        return draw(_text).encode(charset, "replace")
    boundary = draw(st.sampled_from(["b1", "b2", "==x==", ""]))
    parts = draw(st.lists(st.tuples(st.lists(_header(), max_size=3), _body(depth + 1)), max_size=3))
    out = [b"preamble"]
    for headers, body in parts:
        out.append(
            f"--{boundary}\r\n".encode()
            + "\r\n".join(headers).encode("utf-8", "surrogatepass")
            + b"\r\n\r\n"
            + body
        )
    if draw(st.booleans()):
        out.append(f"--{boundary}--".encode())
    return b"\r\n".join(out)


@st.composite
def generated(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(_header(), max_size=12))
    raw = "\r\n".join(headers).encode("utf-8", "surrogatepass")
    separator = draw(st.sampled_from([b"\r\n\r\n", b"\n\n", b"\r\n", b""]))
    return raw + separator + draw(_body())


@PROPERTY
@given(raw=generated())
def test_generated_messages_get_a_verdict(raw: bytes, ctx: Context) -> None:
    check(raw, ctx)
    if len(raw) > 200:  # over the size limit: only the headers are read
        verdict = check(raw, replace(ctx, max_bytes=200))
        assert verdict.kind is Kind.UNREADABLE
        assert "too large" in verdict.reason


# ---- real fixtures, mutated -----------------------------------------------------------


def _fixture(index: int) -> bytes:
    raw = FIXTURES[index % len(FIXTURES)].read_bytes()
    settings_ = get_settings()
    secret = "5e" * 16  # any link secret: classify() only checks our signature
    for key, value in {
        "{{TOKEN_SAM}}": unsubscribe_token(17, 5, secret=secret),
        "{{TOKEN_TINA}}": unsubscribe_token(23, 0, secret=secret),
        "{{OWN_MSGID}}": campaign_message_id(settings_, 5, 99, secret),
        "{{MSGID_HECTOR}}": campaign_message_id(settings_, 5, 12, secret),
    }.items():
        raw = raw.replace(key.encode(), value.encode())
    return raw


_MUTATIONS = ["splice", "truncate", "drop", "double", "no_separator", "overwrite", "crlf"]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = _fixture(draw(st.integers(0, len(FIXTURES) - 1)))
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(_MUTATIONS))
        at = draw(st.integers(0, len(raw)))
        if how == "splice":
            raw = raw[:at] + draw(st.binary(min_size=1, max_size=40)) + raw[at:]
        elif how == "truncate":
            raw = raw[:at]
        elif how == "drop":
            raw = raw[:at] + raw[at + draw(st.integers(1, 200)) :]
        elif how == "double":
            raw = raw[:at] + raw[at : at + draw(st.integers(1, 200))] + raw[at:]
        elif how == "no_separator":
            raw = raw.replace(b"\n\n", b"\n", 1).replace(b"\r\n\r\n", b"\r\n", 1)
        elif how == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=20))
            raw = raw[:at] + chunk + raw[at + len(chunk) :]
        else:
            raw = raw.replace(b"\n", b"\r\n") if b"\r\n" not in raw else raw.replace(b"\r\n", b"\r")
    return raw


@PROPERTY
@given(raw=mutated())
def test_mutated_fixtures_get_a_verdict(raw: bytes, ctx: Context) -> None:
    check(raw, ctx)


@pytest.mark.parametrize("charset", ["€utf-8".encode(), b"\x80utf-8", b"utf-8\xff", b"\xe2\x82"])
def test_a_charset_name_that_is_not_ascii_is_an_unknown_charset(
    charset: bytes, ctx: Context
) -> None:
    """Found by the property test: the email package raises CharsetError or UnicodeError,
    not LookupError, for these, and the reader reported a classifier failure."""
    raw = (
        b"From: a@example.com\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/plain; charset="' + charset + b'"\r\n\r\nplease unsubscribe\r\n'
    )
    verdict = check(raw, ctx)
    assert verdict.kind is Kind.UNREADABLE
    assert "unknown charset" in verdict.reason


@pytest.mark.parametrize("subject", ["=?€utf-8?q?Abmeldung?=", "=?\x80koi8-r?b?AAAA?="])
def test_an_encoded_word_with_a_broken_charset_is_left_as_written(
    subject: str, ctx: Context
) -> None:
    """Found by the property test: such a Subject made the whole message unparseable."""
    raw = (
        f"From: a@example.com\r\nTo: info@example.org\r\nSubject: {subject}\r\n"
        "Thread-Topic: " + subject + "\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nPlease unsubscribe me.\r\n"
    ).encode("utf-8", "surrogateescape")
    verdict = check(raw, ctx)
    assert verdict.kind is Kind.PERSON_OPTOUT, verdict.reason
    assert "Abmeldung" in verdict.subject or "koi8-r" in verdict.subject


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_every_prefix_of_a_fixture_gets_a_verdict(path: Path, ctx: Context) -> None:
    """Mail cut off anywhere (a dropped connection, a size limit): every 97th prefix."""
    raw = _fixture(FIXTURES.index(path))
    for end in range(0, len(raw), 97):
        check(raw[:end], ctx)


# ---- the reader's own parsers on arbitrary text ---------------------------------------


@PROPERTY
@given(
    text=st.one_of(
        st.text(max_size=300), st.lists(st.sampled_from(_WORDS), max_size=20).map(" ".join)
    )
)
def test_reader_and_auth_parsers_take_any_text(text: str) -> None:
    reading = read_request(text)
    assert reading.found is None or reading.found["match"]
    result = authres.evidence([text, "mx.example.org; " + text], "mx.example.org", "a@example.com")
    assert result["authenticated"] in {True, False}
    json.dumps(result)
