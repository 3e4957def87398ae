"""Machine or person? The request shape of an open or a click, read once (pure).

A machine open or click is counted apart, never as a person's: image proxies that fetch
every image at delivery (Apple Mail Privacy Protection) or on the reader's behalf (Gmail,
Yahoo), link scanners that follow every link before the reader sees the mail (Microsoft
Safe Links, Proofpoint, Mimecast, Barracuda...), link previews and scripts, HEAD requests,
and anything within EARLY_SECONDS of delivery (app/tracking/record.py checks that one, as
it needs the send's time). The user-agent patterns and address ranges, with their sources,
are listed in docs/DESIGN.md ("Machine opens and clicks").
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

EARLY_SECONDS = 10.0
"""An open or click this soon after delivery is a machine's: scanners and prefetchers act
as the mail arrives; a person needs longer to open it, let alone read and click."""

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(*cidrs: str) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Address ranges whose requests are machines' whatever their user agent says.
RANGES: dict[str, tuple[_Network, ...]] = {
    # Apple's 17.0.0.0/8 (ARIN: Apple Inc.): MPP image loads come through Apple's relay.
    "apple-mpp": _nets("17.0.0.0/8"),
    # Google's image proxy (ggpht.com, GoogleImageProxy): Google's published ranges.
    "google-proxy": _nets("66.249.80.0/20", "66.102.0.0/20", "64.233.160.0/19"),
    # Yahoo's mail proxy: ranges registered to Yahoo / Oath (ARIN, AS36647).
    "yahoo-proxy": _nets("98.136.0.0/14", "74.6.0.0/16", "66.196.64.0/18"),
    # Microsoft Exchange Online Protection (Safe Links): spf.protection.outlook.com.
    "scanner:microsoft": _nets("40.92.0.0/15", "40.107.0.0/16", "52.100.0.0/14", "104.47.0.0/17"),
    # Proofpoint's hosted service (pphosted), as published for allow-listing.
    "scanner:proofpoint": _nets("67.231.144.0/20", "148.163.128.0/19"),
    # Mimecast (US, UK) and Barracuda Email Security Service, as published for allow-listing.
    "scanner:mimecast": _nets("205.139.110.0/24", "207.211.30.0/24", "91.220.42.0/24"),
    "scanner:barracuda": _nets("64.235.144.0/20", "209.222.80.0/21"),
}

# User agents (case-insensitive substrings), checked in order.
AGENTS: tuple[tuple[str, str], ...] = (
    ("googleimageproxy", "google-proxy"),
    ("ggpht.com", "google-proxy"),
    ("yahoomailproxy", "yahoo-proxy"),
    ("barracuda", "scanner:barracuda"),
    ("mimecast", "scanner:mimecast"),
    ("proofpoint", "scanner:proofpoint"),
    ("safelinks", "scanner:microsoft"),
    ("bingpreview", "scanner:microsoft"),
    ("symantec", "scanner:other"),
    ("trend micro", "scanner:other"),
    ("trendmicro", "scanner:other"),
    ("forcepoint", "scanner:other"),
    ("ironport", "scanner:other"),
    ("fireeye", "scanner:other"),
    ("headlesschrome", "bot"),
    ("phantomjs", "bot"),
    ("python-", "bot"),
    ("curl/", "bot"),
    ("wget/", "bot"),
    ("go-http-client", "bot"),
    ("java/", "bot"),
    ("okhttp", "bot"),
    ("libwww", "bot"),
    ("facebookexternalhit", "preview"),
    ("slackbot", "preview"),
    ("twitterbot", "preview"),
    ("linkedinbot", "preview"),
    ("whatsapp", "preview"),
    ("discordbot", "preview"),
    ("telegrambot", "preview"),
    ("bot", "bot"),
    ("crawler", "bot"),
    ("spider", "bot"),
)
_AGENT = re.compile("|".join(re.escape(p) for p, _ in AGENTS), re.I)
_AGENT_REASON = dict(AGENTS)

APPLE_MPP_AGENT = "Mozilla/5.0"
"""Apple's MPP proxy sends exactly this, nothing more (no browser, no platform)."""


@lru_cache(maxsize=4096)
def classify_agent(user_agent: str) -> str | None:
    """The machine reason a user agent gives, or None."""
    ua = user_agent.strip()
    if not ua:
        return "no-agent"
    if ua == APPLE_MPP_AGENT:
        return "apple-mpp"
    match = _AGENT.search(ua)
    return _AGENT_REASON[match.group(0).lower()] if match else None


@lru_cache(maxsize=4096)
def classify_address(address: str) -> str | None:
    """The machine reason of a client address (one of RANGES), or None."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    for reason, nets in RANGES.items():
        if any(ip in net for net in nets if net.version == ip.version):
            return reason
    return None


def classify_request(method: str, user_agent: str, address: str) -> str | None:
    """Why a request is a machine's (HEAD, its user agent, its address), or None for a
    person as far as the request shows; the time since delivery is checked when recorded."""
    if method.upper() == "HEAD":
        return "head"
    return classify_agent(user_agent) or classify_address(address)


def classify_timing(seconds_since_delivery: float | None) -> str | None:
    """`early` within EARLY_SECONDS of delivery (or before it: clocks disagree), and when
    the delivery is not even recorded yet (None: results are written within ~50 ms)."""
    if seconds_since_delivery is None or seconds_since_delivery < EARLY_SECONDS:
        return "early"
    return None
