"""Machine or person, from request shapes recorded from real clients and proxies: the user
agents below are the ones these services send (as published by them or seen in logs), the
addresses from the ranges documented in docs/DESIGN.md."""

from __future__ import annotations

import pytest

from app.tracking.classify import (
    EARLY_SECONDS,
    classify_address,
    classify_request,
    classify_timing,
)

# (method, user agent, client address) -> machine reason (None: a person)
SHAPES = [
    # Apple Mail Privacy Protection: a bare "Mozilla/5.0" from Apple's 17/8
    ("GET", "Mozilla/5.0", "17.58.101.33", "apple-mpp"),
    ("GET", "Mozilla/5.0", "203.0.113.9", "apple-mpp"),
    # Gmail's image proxy
    (
        "GET",
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
        "66.249.84.220",
        "google-proxy",
    ),
    # Yahoo's mail proxy
    (
        "GET",
        "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
        "98.137.12.5",
        "yahoo-proxy",
    ),
    # Microsoft Safe Links: an ordinary browser string from Exchange Online Protection
    (
        "GET",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
        "40.107.22.51",
        "scanner:microsoft",
    ),
    # Proofpoint URL Defense, Mimecast, Barracuda: their ranges and their agents
    (
        "GET",
        "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:52.0) Gecko/20100101 Firefox/52.0",
        "148.163.150.10",
        "scanner:proofpoint",
    ),
    ("GET", "Mimecast-URL-Protect/1.0", "198.51.100.4", "scanner:mimecast"),
    ("GET", "Mozilla/5.0 (compatible; Barracuda Sentinel)", "198.51.100.5", "scanner:barracuda"),
    ("GET", "Mozilla/5.0 (Windows NT 10.0) Firefox/120.0", "64.235.150.1", "scanner:barracuda"),
    # link previews and scripts
    (
        "GET",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "198.51.100.6",
        "preview",
    ),
    (
        "GET",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "198.51.100.7",
        "preview",
    ),
    ("GET", "python-requests/2.32.3", "198.51.100.8", "bot"),
    ("GET", "curl/8.5.0", "198.51.100.9", "bot"),
    (
        "GET",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/120.0.0.0 Safari/537.36",
        "198.51.100.10",
        "bot",
    ),
    ("GET", "", "198.51.100.11", "no-agent"),
    # HEAD: nobody reads with HEAD
    (
        "HEAD",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.2 Safari/605.1.15",
        "198.51.100.12",
        "head",
    ),
    # people: mail clients and browsers from ordinary addresses
    (
        "GET",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
        "203.0.113.20",
        None,
    ),
    (
        "GET",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0",
        "203.0.113.21",
        None,
    ),
    (
        "GET",
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
        "2001:db8::1",
        None,
    ),
    (
        "GET",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
        "::ffff:203.0.113.22",
        None,
    ),
]


@pytest.mark.parametrize(("method", "agent", "address", "reason"), SHAPES)
def test_recorded_request_shapes(method: str, agent: str, address: str, reason: str | None):
    assert classify_request(method, agent, address) == reason


def test_ipv4_mapped_addresses_and_garbage() -> None:
    assert classify_address("::ffff:17.1.2.3") == "apple-mpp"
    assert classify_address("testclient") is None
    assert classify_address("") is None


def test_opens_and_clicks_within_seconds_of_delivery_are_machines() -> None:
    assert classify_timing(0.5) == "early"
    assert classify_timing(-3) == "early"  # clocks disagree: still at delivery
    assert classify_timing(None) == "early"  # delivered, not yet recorded as sent
    assert classify_timing(EARLY_SECONDS + 1) is None
    assert classify_timing(3600) is None
