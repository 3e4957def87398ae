"""Authentication-Results (RFC 8601) as real MTAs write them, and which header is believed."""

from __future__ import annotations

import pytest

from app.inbound.authres import aligned, evidence, parse

GMAIL = (
    "mx.google.com;\r\n       dkim=pass header.i=@example.com header.s=20230601 "
    "header.b=AbCdEf12;\r\n       spf=pass (google.com: domain of ann@example.com "
    "designates 209.85.220.41 as permitted sender) smtp.mailfrom=ann@example.com;\r\n"
    "       dmarc=pass (p=NONE sp=QUARANTINE dis=NONE) header.from=example.com"
)
OPENDMARC = "mx.example.org; dmarc=pass (p=reject dis=none) header.from=example.com"
OPENDKIM = (
    "mx.example.org;\r\n\tdkim=pass (2048-bit key; unprotected) header.d=example.com "
    'header.i=@example.com header.b="Xq1/3ab;c"'
)
RSPAMD = (
    "mx.example.org;\r\n\tdkim=pass header.d=example.com header.s=s1 header.b=Zx;\r\n"
    "\tspf=softfail (mx.example.org: 198.51.100.7 is neither permitted nor denied by "
    "domain of ann@example.com) smtp.mailfrom=ann@example.com;\r\n"
    '\tdmarc=fail reason="No valid SPF, DKIM not aligned" header.from=example.com '
    "(policy=quarantine)"
)
MICROSOFT = (
    "spf=pass (sender IP is 40.107.1.2) smtp.mailfrom=example.com; dkim=pass "
    "(signature was verified) header.d=example.com;dmarc=pass action=none "
    "header.from=example.com;compauth=pass reason=100"
)


def test_parses_what_mtas_write() -> None:
    assert parse(GMAIL)[0] == "mx.google.com"
    assert [(r["method"], r["result"]) for r in parse(GMAIL)[1]] == [
        ("dkim", "pass"),
        ("spf", "pass"),
        ("dmarc", "pass"),
    ]
    assert parse(GMAIL)[1][0]["header.i"] == "@example.com"
    # a ';' inside a comment or a quoted value does not split the result
    [dkim] = parse(OPENDKIM)[1]
    assert dkim["header.d"] == "example.com"
    assert dkim["header.b"] == "Xq1/3ab;c"
    results = parse(RSPAMD)[1]
    assert results[1]["smtp.mailfrom"] == "ann@example.com"
    assert results[2]["reason"] == "No valid SPF, DKIM not aligned"
    assert parse("mx.example.org 1; none") == ("mx.example.org", [])
    assert parse("mx.example.org; dkim/1 = pass header . d = example.com")[1] == [
        {"method": "dkim", "result": "pass", "header.d": "example.com"}
    ]
    assert (
        parse("mx.example.org; dkim=pass (nested (comment; here) x) header.d=a.example")[1][0][
            "header.d"
        ]
        == "a.example"
    )


def test_only_the_topmost_header_of_our_authserv_id_is_believed() -> None:
    forged_below = (
        "mx.example.org; dkim=pass header.d=bank.example; dmarc=pass header.from=bank.example"
    )
    ours = (
        "mx.example.org; spf=fail smtp.mailfrom=x@attacker.example; dmarc=fail "
        "header.from=bank.example"
    )
    found = evidence(
        [GMAIL.replace("example.com", "bank.example"), ours, forged_below],
        "MX.Example.org",
        "victim@bank.example",
    )
    assert found["authenticated"] is False
    assert found["dmarc"]["result"] == "fail"
    assert found["ignored"] == {"other_authserv_ids": 1, "lower_trusted_headers": 1}
    assert evidence([MICROSOFT], "mx.example.org", "ann@example.com")["authenticated"] is False
    assert evidence([OPENDMARC], "", "ann@example.com")["authenticated"] is False


@pytest.mark.parametrize(
    ("headers", "sender", "dmarc", "dkim"),
    [
        ([OPENDMARC, OPENDKIM], "ann@example.com", True, False),  # OpenDMARC on top
        ([OPENDKIM, OPENDMARC], "ann@example.com", False, True),  # OpenDKIM on top
        ([RSPAMD], "ann@example.com", False, True),  # DMARC failed, but DKIM aligned
        ([RSPAMD], "ann@sub.example.com", False, True),  # relaxed: parent domain signed
        ([RSPAMD], "ann@other.example", False, False),  # DKIM by a domain not the From's
        ([OPENDMARC], "ann@EXAMPLE.com", True, False),
        ([OPENDMARC], "ann@example.net", False, False),  # DMARC pass for another domain
    ],
)
def test_from_domain_authentication(
    headers: list[str], sender: str, dmarc: bool, dkim: bool
) -> None:
    found = evidence(headers, "mx.example.org", sender.lower())
    assert (found["dmarc_pass"], found["aligned_dkim_pass"]) == (dmarc, dkim)
    assert found["authenticated"] is (dmarc or dkim)


def test_alignment() -> None:
    assert aligned("example.com", "example.com")
    assert aligned("example.com", "news.example.com")
    assert aligned("mail.example.com", "example.com")
    assert aligned("@example.com", "example.com")  # header.i form
    assert not aligned("com", "example.com")
    assert not aligned("badexample.com", "example.com")
    assert not aligned("example.com.evil.example", "example.com")
    assert not aligned("", "example.com")
