"""Our copy of the stdlib MIME parser gives the very same message tree as email's own."""

from __future__ import annotations

import email
import re
from email import policy
from typing import Any

import pytest

from app.inbound.classify import _POLICY
from app.inbound.mime import _Re, parse_bytes
from tests.support.inbound import FIXTURES

_TRICKY = [
    # boundary with regex metacharacters, spaces, a closing line with whitespace and CR only
    b'Content-Type: multipart/mixed; boundary="a.b+c(d)[e]*?$^ |x"\r\n\r\npre\r\n'
    b"--a.b+c(d)[e]*?$^ |x\r\nContent-Type: text/plain\r\n\r\none\r\n"
    b"--a.b+c(d)[e]*?$^ |x  \t\r\n\r\ntwo\r\n--a.b+c(d)[e]*?$^ |x-- \rafter\n",
    # nested multiparts, one never closed, a boundary that prefixes another
    b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: multipart/alternative;'
    b' boundary="bb"\n\n--bb\n\nx\n--bbb\n--bb--\n--b\nContent-Type: message/rfc822\n\n'
    b"Subject: inner\n\nbody\n--b",
    # no boundary parameter, an empty one, 8-bit bytes around the separators
    b"Content-Type: multipart/mixed\n\n--\nx\n",
    b'Content-Type: multipart/mixed; boundary=""\n\n--\nx\n----\n',
    b'Content-Type: multipart/mixed; boundary="\xe9t\xe9"\n\n--\xe9t\xe9\n\n\xff\n--\xe9t\xe9--\n',
]


def _tree(msg: email.message.Message) -> list[object]:
    return [
        (
            p.get_content_type(),
            list(p.raw_items()),
            p.preamble,
            p.epilogue,
            [type(d).__name__ for d in p.defects],
            p._payload if isinstance(p._payload, str) else len(p._payload),
        )
        for p in msg.walk()
    ]


@pytest.mark.parametrize(
    "pol", [_POLICY, policy.compat32, policy.default], ids=["ours", "compat32", "default"]
)
def test_same_tree_as_the_stdlib(pol: policy.Policy) -> None:
    raws = [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))] + _TRICKY
    for raw in raws:
        for cut in (len(raw), len(raw) // 2, len(raw) - 3):
            expected = _tree(email.message_from_bytes(raw[:cut], policy=pol))
            assert _tree(parse_bytes(raw[:cut], pol)) == expected, raw[:cut]


def test_only_the_boundary_pattern_is_replaced() -> None:
    fake = _Re()
    sep = "--x.y"
    pattern = "(?P<sep>" + re.escape(sep) + r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
    real, ours = re.compile(pattern), fake.compile(pattern)
    assert not isinstance(ours, re.Pattern)
    for line in ["--x.y\n", "--x.y--\r\n", "--x.y  \t", "--xzy\n", "--x.yz\n", "--x.y\n\n", ""]:
        a, b = real.match(line), ours.match(line)
        assert (a is None) == (b is None), line
        if a is not None:
            assert [a.group(g) for g in ("sep", "end", "ws", "linesep", 0)] == [
                b.group(g) for g in ("sep", "end", "ws", "linesep", 0)
            ]
    assert isinstance(fake.compile(r"\r\n|\r|\n"), re.Pattern)
    assert fake.escape is re.escape


def test_the_fast_boundary_matcher_is_the_one_used_on_this_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The speed-up depends on the stdlib feedparser building its boundary pattern the way
    _HEAD and _TAIL expect. Should a Python release change that pattern, _Re.compile would
    hand it to the real re.compile and everything would still parse, only slower: this test
    is what notices."""
    from app.inbound import mime

    answered: list[tuple[str, object]] = []
    real_compiled: list[str] = []

    class Spy(mime._Re):
        @staticmethod
        def compile(pattern: Any, flags: int = 0) -> Any:
            result = mime._Re.compile(pattern, flags)
            answered.append((pattern, result))
            return result

    real_compile = re.compile

    def watch_real(pattern: Any, flags: int = 0) -> Any:
        real_compiled.append(str(pattern))
        return real_compile(pattern, flags)

    monkeypatch.setattr(mime._feedparser, "re", Spy())
    monkeypatch.setattr(re, "compile", watch_real)
    raw = (
        b'Content-Type: multipart/mixed; boundary="outer-9f.x"\r\n\r\n'
        b'--outer-9f.x\r\nContent-Type: multipart/alternative; boundary="inner+7"\r\n\r\n'
        b"--inner+7\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
        b"--inner+7\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--inner+7--\r\n"
        b"--outer-9f.x--\r\n"
    )
    message = parse_bytes(raw, policy.default)
    monkeypatch.undo()

    assert [p.get_content_type() for p in message.walk()] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    boundaries = [(p, r) for p, r in answered if "outer" in p or "inner" in p]
    assert len(boundaries) == 2, answered  # one pattern per multipart, both through our re
    for pattern, result in boundaries:
        assert isinstance(result, mime._Boundary), pattern
    assert not [p for p in real_compiled if "outer" in p or "inner" in p]
