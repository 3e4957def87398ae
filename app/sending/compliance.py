"""Marketing mail always carries a visible unsubscribe link and the sender's postal address,
in BOTH parts (HTML and plain text), so no layout or body can switch them off by accident.

Two checks, both once per campaign (never per recipient):
- `check_layout` at create/update: the final templates must use `{{ unsubscribe_url }}` and
  `{{ postal_address }}` in each part (a clear 422 naming what is missing);
- `check_rendered` before a send starts (preflight, and the dispatcher's prepare): the
  sample message, as rendered, shows the link (an <a href> with visible text) and the
  address, in the HTML and the text part.
Transactional campaigns (account and policy notices) are exempt: see docs/DESIGN.md.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from jinja2 import nodes

from app.errors import InvalidInput

REQUIRED = ("unsubscribe_url", "postal_address")
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden"
    r"|font-size\s*:\s*0+(?:\.0*)?(?:px|pt|em|rem|%)?\s*(?:;|!|$)",
    re.I,
)
_INVISIBLE = frozenset({"head", "style", "script", "title", "template"})
_VOID = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }
)


def check_layout(html_tree: nodes.Template, text_tree: nodes.Template) -> None:
    """Refuse final templates of a marketing campaign that lack the link or the address."""
    missing = []
    for part, tree in (("HTML", html_tree), ("text", text_tree)):
        used = {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"}
        missing += [f"{{{{ {name} }}}} in the {part} part" for name in REQUIRED if name not in used]
    if missing:
        raise InvalidInput(
            "a marketing email must show the unsubscribe link and the sender's postal "
            f"address in both parts; the layout and body lack {', '.join(missing)} "
            "(use a layout that has them, e.g. 'default', or category transactional)"
        )


class _Visible(HTMLParser):
    """The visible text of an HTML document and the visible text of each link."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.text: list[str] = []
        self.links: dict[str, list[str]] = {}
        self.open_links: list[str] = []

    def _hidden(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        hidden = (
            self._hidden()
            or tag in _INVISIBLE
            or "hidden" in values
            or bool(_HIDDEN_STYLE.search(values.get("style") or ""))
        )
        if tag in _VOID:
            return
        self.stack.append((tag, hidden))
        if tag == "a":
            href = values.get("href") or ""
            self.open_links.append(href)
            self.links.setdefault(href, [])

    def handle_endtag(self, tag: str) -> None:
        if any(open_tag == tag for open_tag, _ in self.stack):
            while self.stack:
                open_tag, _ = self.stack.pop()
                if open_tag == "a" and self.open_links:
                    self.open_links.pop()
                if open_tag == tag:
                    break

    def handle_data(self, data: str) -> None:
        if self._hidden():
            return
        self.text.append(data)
        for href in self.open_links:
            self.links[href].append(data)


def _squeeze(text: str) -> str:
    return " ".join(text.split()).casefold()


def check_rendered(html: str, text: str, *, unsubscribe_url: str, postal_address: str) -> None:
    """Refuse a rendered marketing message whose HTML or text part lacks the visible
    unsubscribe link or the postal address."""
    page = _Visible()
    page.feed(html)
    page.close()
    address = _squeeze(postal_address)
    problems = []
    if not _squeeze("".join(page.links.get(unsubscribe_url, []))):
        problems.append("the HTML part has no visible unsubscribe link")
    if not address or address not in _squeeze(" ".join(page.text)):
        problems.append("the HTML part does not show the postal address")
    if unsubscribe_url not in text:
        problems.append("the text part has no unsubscribe link")
    if not address or address not in _squeeze(text):
        problems.append("the text part does not show the postal address")
    if problems:
        raise InvalidInput(
            "a marketing email must show the unsubscribe link and the "
            f"sender's postal address: {'; '.join(problems)}"
        )
