"""Authentication evidence of an inbound message: the DKIM, SPF and DMARC results our own
receiving MTA wrote in its Authentication-Results header (RFC 8601). Pure parsing.

Only a header written by the configured trusted authserv-id counts, and of those only the
TOPMOST: a receiving MTA prepends its header above everything the sender wrote, so any
lower header claiming the same authserv-id may be a forgery carried in from outside
(RFC 8601 section 5 asks MTAs to remove those; not all do). Headers of other authserv-ids
are ignored. The result says whether the From domain is authenticated: DMARC pass for that
domain, or a DKIM pass by an aligned domain (the From domain, a parent or a subdomain).
"""

from __future__ import annotations

import re
from typing import Any

MAX_HEADERS = 20
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_PAIR = re.compile(
    r"([A-Za-z][\w-]*(?:\s*/\s*\d+)?(?:\s*\.\s*[A-Za-z][\w-]*)?)\s*=\s*"
    r'("(?:[^"\\]|\\.)*"|[^\s;"]+)'
)


_QUOTED_PAIR = re.compile(r"\\(.)")
_SPECIAL = re.compile(r'[()"\\]')
_PIECES = re.compile(r'"(?:[^"\\]|\\.)*"?|;|[^";]+')


def _strip_comments(value: str) -> str:
    """CFWS comments removed (nested parentheses, quoted pairs; quoted strings left alone).
    Jumps from one special character to the next: this runs for every opt-out by email."""
    if "(" not in value:
        return value
    out: list[str] = []
    depth = pos = 0
    quoted = False
    while True:
        found = _SPECIAL.search(value, pos)
        end = found.start() if found else len(value)
        if depth == 0:
            out.append(value[pos:end])
        if found is None:
            return "".join(out)
        char, pos = found.group(), end + 1
        if char == "\\":
            if depth == 0:
                out.append(value[end : end + 2])
            pos = end + 2
        elif depth == 0 and (quoted or char != "("):
            # Outside comments every special but "(" is kept as written: quoted text (only
            # ever at depth 0: a comment cannot start inside quotes), a quote mark, which
            # opens or closes it, and a stray ")".
            out.append(char)
            quoted ^= char == '"'
        elif char == "(":
            depth += 1
        elif char == ")":  # inside a comment: a quote mark there means nothing
            depth -= 1
            if depth == 0:
                out.append(" ")


def _split(value: str) -> list[str]:
    """Split on ';' outside quoted strings."""
    if '"' not in value:
        return value.split(";")
    parts: list[str] = []
    current: list[str] = []
    for piece in _PIECES.findall(value):
        if piece == ";":
            parts.append("".join(current))
            current = []
        else:
            current.append(piece)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return _QUOTED_PAIR.sub(r"\1", value[1:-1]) if "\\" in value else value[1:-1]
    return value


def parse(value: str) -> tuple[str, list[dict[str, str]]]:
    """(authserv-id, [{"method", "result", "reason"?, "header.d", ...}]) of one header."""
    parts = _split(_strip_comments(value))
    head = parts[0].split()
    authserv_id = _unquote(head[0]).lower() if head else ""
    results = []
    for part in parts[1:]:
        pairs = [("".join(key.split()).lower(), _unquote(val)) for key, val in _PAIR.findall(part)]
        if not pairs:
            continue
        method, result = pairs[0]
        entry = {"method": method.split("/")[0], "result": result.lower()}
        for key, val in pairs[1:]:
            entry.setdefault(key, val[:255])
        results.append(entry)
    return authserv_id, results


def _domain(value: str) -> str:
    return value.rpartition("@")[2].strip().strip(".").lower()


def aligned(signing: str, from_domain: str) -> bool:
    """Relaxed alignment without a public-suffix list: the same domain, or one a parent of
    the other (a DKIM pass for a parent needs control of that parent's DNS)."""
    signing, from_domain = _domain(signing), _domain(from_domain)
    if not signing or not from_domain or "." not in signing:
        return False
    return (
        signing == from_domain
        or from_domain.endswith("." + signing)
        or signing.endswith("." + from_domain)
    )


def evidence(headers: list[str], trusted_id: str, from_addr: str) -> dict[str, Any]:
    """What the trusted Authentication-Results header says about this message's From."""
    trusted = trusted_id.strip().lower()
    from_domain = _domain(from_addr) if "@" in from_addr else ""
    found: dict[str, Any] = {
        "authserv_id": trusted,
        "from_domain": from_domain,
        "authenticated": False,
    }
    if not trusted:
        found["reason"] = "no trusted authserv-id configured"
        return found
    top: list[dict[str, str]] | None = None
    same_id = other_ids = 0
    for value in headers[:MAX_HEADERS]:
        authserv_id, results = parse(value)
        if authserv_id != trusted:
            other_ids += 1
        elif top is None:
            top = results
        else:
            same_id += 1  # below the topmost: possibly carried in from outside, never read
    found["ignored"] = {"other_authserv_ids": other_ids, "lower_trusted_headers": same_id}
    if top is None:
        found["reason"] = "no Authentication-Results header from the trusted authserv-id"
        return found
    dkim = [
        {
            "result": r["result"],
            "domain": _domain(r.get("header.d", "") or r.get("header.i", "")),
            "aligned": aligned(r.get("header.d", "") or r.get("header.i", ""), from_domain),
        }
        for r in top
        if r["method"] == "dkim"
    ][:10]
    spf = next(
        (
            {"result": r["result"], "mailfrom": r.get("smtp.mailfrom", "")[:255]}
            for r in top
            if r["method"] == "spf"
        ),
        None,
    )
    dmarc = next(
        (
            {"result": r["result"], "from": _domain(r.get("header.from", ""))}
            for r in top
            if r["method"] == "dmarc"
        ),
        None,
    )
    dmarc_pass = bool(
        dmarc and dmarc["result"] == "pass" and from_domain and dmarc["from"] == from_domain
    )
    dkim_pass = any(d["result"] == "pass" and d["aligned"] for d in dkim)
    found.update(
        dkim=dkim,
        spf=spf,
        dmarc=dmarc,
        dmarc_pass=dmarc_pass,
        aligned_dkim_pass=dkim_pass,
        authenticated=dmarc_pass or dkim_pass,
    )
    return found
