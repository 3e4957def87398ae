"""Open pixel and click links put into a campaign's templates, once per campaign (pure).

The tracked copy of a campaign is a second pair of templates: every trackable link's target
becomes `{base}/r/{{ tracking_token }}/{link token}` (the link token signed once per
campaign, the message token rendered per person: one HMAC per message, however many links)
and the pixel `<img src="{base}/o/{{ tracking_token }}">` closes the body. People who did not
allow tracking get the untracked pair: no pixel, no rewritten link (app/sending/render.py).

Left alone: anything but http(s) (mailto:, tel:, anchors), links whose target is a template
expression (`{{ unsubscribe_url }}`, `{{ preferences_url }}`, personal links), links to our
own unsubscribe and preference pages, links longer than app.links.MAX_TRACKED_URL, and links
the marketer marks with `data-notrack` on the `<a>` tag (in the text part too).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from app.links import trackable

TOKEN_VARIABLE = "tracking_token"
_A_TAG = re.compile(r"<a\b[^>]*>", re.I)
_HREF = re.compile(r"""(\shref\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.I)
_NOTRACK = re.compile(r"\sdata-notrack\b", re.I)
_BODY_CLOSE = re.compile(r"</body\s*>", re.I)
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_TEXT_URL = re.compile(r"https?://[^\s<>\"'\[\]()]+", re.I)
_TRAILING = ".,;:!?"
PIXEL = (
    '<img src="{url}" width="1" height="1" alt="" '
    'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">'
)


@dataclass
class TrackingPlan:
    """What to put in the tracked copy of one campaign."""

    base_url: str
    sign_link: Callable[[str], str]
    """URL -> its link token (app.links.link_token for this campaign)."""
    opens: bool = True
    clicks: bool = True
    own_pages: tuple[str, ...] = ()
    """Our unsubscribe and preference URLs' prefixes: never rewritten."""
    _tokens: dict[str, str] = field(default_factory=dict)

    def click_target(self, url: str) -> str | None:
        """The tracked href for `url` (a template), or None to leave the link alone."""
        if not self.clicks or "{" in url or not trackable(url) or url.startswith(self.own_pages):
            return None
        token = self._tokens.get(url)
        if token is None:
            token = self._tokens[url] = self.sign_link(url)
        return f"{self.base_url}/r/{{{{ {TOKEN_VARIABLE} }}}}/{token}"

    @property
    def links(self) -> list[str]:
        """The URLs rewritten so far (tests, preflight)."""
        return list(self._tokens)


def track_html(source: str, plan: TrackingPlan) -> tuple[str, set[str]]:
    """(the tracked HTML template, the URLs marked data-notrack)."""
    notrack: set[str] = set()

    def tag(match: re.Match[str]) -> str:
        text = match.group(0)
        href = _HREF.search(text)
        if href is None or "{{" in text or "{%" in text:
            return text
        url = html.unescape(href.group(2) if href.group(2) is not None else href.group(3))
        if _NOTRACK.search(text):
            notrack.add(url)
            return text
        target = plan.click_target(url)
        if target is None:
            return text
        return text[: href.start()] + f'{href.group(1)}"{target}"' + text[href.end() :]

    out = _A_TAG.sub(tag, source) if plan.clicks else source
    if plan.opens:
        pixel = PIXEL.format(url=f"{plan.base_url}/o/{{{{ {TOKEN_VARIABLE} }}}}")
        closes = list(_BODY_CLOSE.finditer(out))
        at = closes[-1].start() if closes else len(out)
        out = out[:at] + pixel + out[at:]
    return out, notrack


def track_text(source: str, plan: TrackingPlan, notrack: set[str]) -> str:
    """The tracked text template: bare URLs outside template tags rewritten."""
    if not plan.clicks:
        return source

    def rewrite(segment: str, before_tag: bool) -> str:
        def url(match: re.Match[str]) -> str:
            found = match.group(0)
            core = found.rstrip(_TRAILING)
            if before_tag and match.end() == len(segment):
                return found  # continued by a template tag: a personal link, left alone
            target = None if core in notrack else plan.click_target(core)
            return found if target is None else target + found[len(core) :]

        return _TEXT_URL.sub(url, segment)

    pieces: list[str] = []
    at = 0
    for tag in _JINJA.finditer(source):
        pieces.append(rewrite(source[at : tag.start()], True))
        pieces.append(tag.group(0))
        at = tag.end()
    pieces.append(rewrite(source[at:], False))
    return "".join(pieces)
