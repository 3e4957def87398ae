"""Campaign templates compiled once: Markdown, layout, CSS inlining, text version, sandbox.

Marketers write Jinja in a bounded sandbox (app.sending.sandbox: no `_`-attributes, no
include/import/extends, limits on operators and work). The static checks run on the FINAL
templates (after Markdown, CSS inlining and the text conversion, which decode entities such as
`&#123;&#123;` into live tags), and refuse unknown variables: a typo is a clear error at
create time, not an empty string in every mail. CSS is inlined ONCE per campaign on the
template source: Jinja tags are swapped for inert placeholders around css-inline and
inscriptis, then restored, so personalisation never needs re-inlining per recipient.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from types import CodeType
from typing import Any, cast

import css_inline
from inscriptis import get_text
from inscriptis.model.config import ParserConfig
from jinja2 import ChainableUndefined, TemplateError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.utils import missing
from markdown_it import MarkdownIt
from markupsafe import escape

from app.errors import InvalidInput
from app.i18n import DEFAULT
from app.sending.compliance import check_layout
from app.sending.footer import FOOTER_VARIABLE, footer_words
from app.sending.mime import QPiece, qp_piece
from app.sending.sandbox import MAX_OUTPUT, BoundedSandbox, TemplateLimitError, reset_budget
from app.sending.tracking import TOKEN_VARIABLE, TrackingPlan, track_html, track_text
from app.web_paths import TEMPLATE_DIR

EMAIL_TEMPLATES = TEMPLATE_DIR / "email"
_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_PLACEHOLDER = re.compile(r"OCTOJINJA(\d{5})Z")
_COMMENT_PLACEHOLDER = re.compile(r"<!--OCTOJINJA(\d{5})Z-->")
_CONTENT_SLOT = re.compile(r"\{\{-?\s*content\s*(\|\s*safe\s*)?-?\}\}")
_LAYOUT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,60}$")
_FORBIDDEN_TAGS = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.I)
PREHEADER_HTML = (
    '<div style="display:none;font-size:1px;line-height:1px;max-height:0;max-width:0;'
    'opacity:0;overflow:hidden;mso-hide:all;">{{ preheader }}' + "&zwnj;&nbsp;" * 90 + "</div>\n"
)
"""Hidden preview text, the usual pattern: clients show the first text of the body after
the subject; the &zwnj;&nbsp; padding keeps them from pulling body text in after it."""

PERSONAL_VARIABLES = (
    "name",
    "first_name",
    "email",
    "attributes",
    "unsubscribe_url",
    "preferences_url",
    "subject",
    "preheader",
)
"""What render.py's `_values` gives every message (keep the two in step)."""
CAMPAIGN_VARIABLES = ("org_name", "postal_address", "topics", "category", "campaign")
"""What render.py's `prepare_campaign` gives every template of a campaign."""
LAYOUT_VARIABLES = (FOOTER_VARIABLE,)
"""The footer's words in the reader's language (app/sending/footer.py): for the body and
the layout, not the subject or preheader (render.received_subject renders a subject again
later without knowing the language it went out in)."""
_STRING_VARIABLES = (
    "name",
    "first_name",
    "email",
    "unsubscribe_url",
    "preferences_url",
    "subject",
    "preheader",
    "org_name",
    "postal_address",
    "category",
)


class _Undefined(ChainableUndefined):
    """An unknown variable raises (a typo must not become an empty string in every mail);
    a missing attribute (`attributes.city` of someone without a city) renders empty; a
    sandbox violation raises instead of hiding."""

    __slots__ = ()

    def _strict(self) -> None:
        if self._undefined_obj is missing or (
            isinstance(self._undefined_exception, type)
            and issubclass(self._undefined_exception, SecurityError)
        ):
            self._fail_with_undefined_error()

    def __str__(self) -> str:
        self._strict()
        return ""

    def __iter__(self) -> Iterator[Any]:
        self._strict()
        return iter(())

    def __bool__(self) -> bool:
        self._strict()
        return False

    def __len__(self) -> int:
        self._strict()
        return 0


@lru_cache(maxsize=2)
def environment(autoescape: bool) -> BoundedSandbox:
    """The sandbox: autoescaped for HTML, plain for text and subjects."""
    return BoundedSandbox(
        autoescape=autoescape,
        undefined=_Undefined,
        keep_trailing_newline=True,
        safe_names=_STRING_VARIABLES,
    )


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True, "typographer": False}).enable(
        ["table", "strikethrough"]
    )


def check_template(source: str, what: str, known: tuple[str, ...] | None = None) -> nodes.Template:
    """Refuse templates that reach for Python internals or other files, or use a variable
    that does not exist (when `known` is given), with a clear message. Returns the tree."""
    env = environment(True)
    try:
        source.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"{what}: not valid text (a lone surrogate at character {exc.start})"
        ) from exc
    try:
        tree = env.parse(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise InvalidInput(f"{what}: template error{where}: {exc.message}") from exc
    except (ValueError, RecursionError, MemoryError) as exc:  # e.g. a 5,000-digit literal
        raise InvalidInput(f"{what}: template error: {str(exc)[:200]}") from exc
    for node in tree.find_all(_FORBIDDEN_TAGS):
        raise InvalidInput(
            f"{what}: {type(node).__name__.lower()} is not allowed in email "
            f"templates (line {node.lineno})"
        )
    for access in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = (
            access.attr
            if isinstance(access, nodes.Getattr)
            else getattr(cast(nodes.Getitem, access).arg, "value", "")
        )
        if isinstance(name, str) and (name.startswith("_") or name in {"mro", "func_globals"}):
            raise InvalidInput(
                f"{what}: '{name}' is not allowed in templates (line {access.lineno})"
            )
    for const in tree.find_all(nodes.Const):
        if isinstance(const.value, str) and const.value.startswith("__"):
            raise InvalidInput(
                f"{what}: '{const.value}' is not allowed in templates (line {const.lineno})"
            )
    if known is not None:
        unknown = sorted(meta.find_undeclared_variables(tree) - set(known) - set(env.globals))
        if unknown:
            raise InvalidInput(
                f"{what}: unknown template variable{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(unknown)}; the known ones are {', '.join(sorted(known))} "
                "(subscriber fields are under attributes, e.g. {{ attributes.city }})"
            )
    return tree


class _Protector:
    """Swap Jinja tags for inert placeholders and back, around HTML/Markdown processing."""

    def __init__(self) -> None:
        self.tags: list[str] = []

    def protect(self, source: str, *, comments_outside_tags: bool = False) -> str:
        def swap(match: re.Match[str]) -> str:
            self.tags.append(match.group(0))
            token = f"OCTOJINJA{len(self.tags) - 1:05d}Z"
            statement = not match.group(0).startswith("{{")
            if comments_outside_tags and statement and not _inside_tag(source, match.start()):
                # Comments stay where they are inside tables; bare text would be moved
                # ("foster-parented") by the HTML parser and break a {% for %} around <tr>.
                return f"<!--{token}-->"
            return token

        return _JINJA_TAG.sub(swap, source)

    def restore(self, text: str) -> str:
        text = _COMMENT_PLACEHOLDER.sub(lambda m: self.tags[int(m.group(1))], text)
        return _PLACEHOLDER.sub(lambda m: self.tags[int(m.group(1))], text)


def _inside_tag(source: str, pos: int) -> bool:
    return source.rfind("<", 0, pos) > source.rfind(">", 0, pos)


def body_to_html(body: str, body_format: str) -> str:
    """The campaign body as an HTML Jinja template (Markdown rendered with tags protected)."""
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if body_format != "markdown":
        return body
    protector = _Protector()
    return protector.restore(_markdown().render(protector.protect(body)))


def load_layout(name: str, layout_dir: str | Path = "") -> tuple[str, str | None]:
    """The HTML layout source and its optional text counterpart, from `layout_dir`
    (OCTOMAIL_EMAIL_LAYOUT_DIR) first, then the shipped templates/email/."""
    if not _LAYOUT_NAME.match(name or ""):
        raise InvalidInput(f"unknown email layout: {name!r}")
    folders = [Path(layout_dir)] if layout_dir else []
    folder = next((f for f in [*folders, EMAIL_TEMPLATES] if (f / f"{name}.html").is_file()), None)
    if folder is None:
        raise InvalidInput(f"unknown email layout: {name!r}")
    html_path: Path = folder / f"{name}.html"
    text_path = folder / f"{name}.txt"
    text = text_path.read_text("utf-8") if text_path.is_file() else None
    return html_path.read_text("utf-8"), text


def _fill_slot(layout: str, content: str) -> str:
    if not _CONTENT_SLOT.search(layout):
        raise InvalidInput("the email layout has no {{ content }} slot")
    return _CONTENT_SLOT.sub(lambda _m: content, layout, count=1)


def inline_css(html_source: str) -> str:
    """Inline the CSS of a whole HTML Jinja template once (media queries kept in <style>)."""
    protector = _Protector()
    protected = protector.protect(html_source, comments_outside_tags=True)
    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
    return protector.restore(inliner.inline(protected))


_TABLE_OR_STATEMENT = re.compile(r"<(/?)(table|td|th)\b|\{%", re.I)
_TABLE_PARTS = re.compile(r"<(/?)(?:table|tbody|thead|tfoot|tr|td|th)\b", re.I)


def _statement_between_cells(html_source: str) -> bool:
    """Is a {% %} tag inside a table but outside its cells ({% for %} around <tr>)?"""
    stack: list[str] = []
    for match in _TABLE_OR_STATEMENT.finditer(html_source):
        if match.group(0) == "{%":
            if stack and stack[-1] == "table":
                return True
            continue
        closing, tag = match.group(1), match.group(2).lower()
        kind = "table" if tag == "table" else "cell"
        if not closing:
            stack.append(kind)
        elif kind in stack:
            while stack.pop() != kind:
                pass
    return False


def html_to_text(html_source: str) -> str:
    """A plain-text Jinja template from an HTML Jinja template (links shown as [text](url))."""
    if _statement_between_cells(html_source):
        # A text table lays cells out as a grid and moves everything between them out of
        # it: the {% for %} around a row would no longer surround its {{ item }}.
        html_source = _TABLE_PARTS.sub(r"<\1div", html_source)
    protector = _Protector()
    text = get_text(protector.protect(html_source), ParserConfig(display_links=True))
    return protector.restore(text).strip() + "\n"


class CompiledTemplate:
    """A sandboxed template plus the QP encoding of its static text, computed once."""

    def __init__(
        self, source: str | nodes.Template, *, autoescape: bool, context: dict[str, Any]
    ) -> None:
        env = environment(autoescape)
        code = env.compile(source)
        # A plain dict, not make_globals()' ChainMap: Jinja copies the globals per render.
        self.template = env.template_class.from_code(env, code, {**env.globals, **context}, None)
        self.cache: dict[str, QPiece] = {
            const: qp_piece(const) for const in _str_constants(code) if const
        }
        self.autoescape = autoescape

    def precode(self, values: Iterable[str]) -> None:
        """Encode once values many messages show (the footer's words in each language), as
        they come out of the template, so qp_pieces finds them like static text."""
        for value in values:
            shown = str(escape(value)) if self.autoescape else value
            if shown and shown not in self.cache:
                self.cache[shown] = qp_piece(shown)

    def render(self, values: dict[str, Any]) -> str:
        reset_budget()
        try:
            out = self.template.render(values)
        except RecursionError as exc:
            raise TemplateLimitError("the template calls itself too deeply") from exc
        if len(out) > MAX_OUTPUT:
            raise TemplateLimitError(
                f"the rendered message is {len(out):,} characters long (limit {MAX_OUTPUT:,})"
            )
        return out

    def qp_pieces(self, values: dict[str, Any]) -> list[QPiece]:
        """The rendered template as QP pieces: static ones from the cache, values encoded now.
        (The work budget bounds the size; the trial render checked MAX_OUTPUT.)"""
        get = self.cache.get
        reset_budget()
        try:
            return [
                get(piece) or qp_piece(piece) for piece in self.template.generate(values) if piece
            ]
        except RecursionError as exc:
            raise TemplateLimitError("the template calls itself too deeply") from exc


def _str_constants(code: CodeType) -> Iterator[str]:
    for const in code.co_consts:
        if isinstance(const, str):
            yield const
        elif isinstance(const, CodeType):
            yield from _str_constants(const)


def campaign_sources(
    body: str, body_format: str, layout: str, layout_dir: str | Path = "", preheader: str = ""
) -> tuple[str, str]:
    """The FINAL html and text templates of a campaign: what actually gets rendered."""
    return _final_templates(body, body_format, layout, layout_dir, bool(preheader))[:2]


def inject_preheader(html_source: str) -> str:
    """PREHEADER_HTML right after <body>: every layout, the deployer's own included, gets
    it without a change (css-inline has wrapped any fragment in <body>). Added after the
    CSS inlining, so no layout rule can restyle the hidden text into view."""
    match = _BODY_OPEN.search(html_source)
    at = match.end() if match else 0
    return html_source[:at] + "\n" + PREHEADER_HTML + html_source[at:].lstrip("\n")


def _final_templates(
    body: str, body_format: str, layout: str, layout_dir: str | Path, preheader: bool = False
) -> tuple[str, str, nodes.Template, nodes.Template]:
    check_template(body, "body")  # before Markdown: a clear line number for the author
    body_html = body_to_html(body, body_format)
    layout_html, layout_text = load_layout(layout, layout_dir)
    html_source = inline_css(_fill_slot(layout_html, body_html))
    if preheader:
        html_source = inject_preheader(html_source)
    if layout_text is not None:
        text_source = _fill_slot(layout_text, html_to_text(body_html).rstrip("\n"))
    else:
        text_source = html_to_text(_fill_slot(layout_html, body_html))
    known = PERSONAL_VARIABLES + CAMPAIGN_VARIABLES + LAYOUT_VARIABLES
    # Markdown, css-inline and inscriptis decode entities: "&#123;&#123;" is a live tag now.
    return (
        html_source,
        text_source,
        check_template(html_source, "body (HTML part)", known),
        check_template(text_source, "body (text part)", known),
    )


def compile_campaign(
    body: str,
    body_format: str,
    layout: str,
    subject: str,
    context: dict[str, Any],
    *,
    layout_dir: str | Path = "",
    marketing: bool = False,
    preheader: str = "",
) -> tuple[CompiledTemplate, CompiledTemplate, CompiledTemplate, CompiledTemplate]:
    """(html, text, subject, preheader) templates for one campaign; raises InvalidInput on
    bad input. `marketing`: also require the unsubscribe link and postal address in both
    parts. The preheader is a plain-text template like the subject (it may use the
    subject); the HTML part shows it, escaped, only when it is not empty."""

    templates, _tracked = compile_campaign_tracked(
        body,
        body_format,
        layout,
        subject,
        context,
        layout_dir=layout_dir,
        marketing=marketing,
        preheader=preheader,
    )
    return templates


def compile_campaign_tracked(
    body: str,
    body_format: str,
    layout: str,
    subject: str,
    context: dict[str, Any],
    *,
    layout_dir: str | Path = "",
    marketing: bool = False,
    preheader: str = "",
    tracking: TrackingPlan | None = None,
) -> tuple[
    tuple[CompiledTemplate, CompiledTemplate, CompiledTemplate, CompiledTemplate],
    tuple[CompiledTemplate, CompiledTemplate] | None,
]:
    """compile_campaign(), plus the tracked (html, text) pair when `tracking` is given
    (app/sending/tracking.py: the same final templates with the pixel and the signed
    redirects in; they may use `tracking_token`, the marketer's templates may not)."""
    own = tuple(v for v in PERSONAL_VARIABLES if v not in ("subject", "preheader"))
    subject_tree = check_template(subject, "subject", own + CAMPAIGN_VARIABLES)
    preheader_tree = check_template(preheader, "preheader", (*own, "subject", *CAMPAIGN_VARIABLES))
    html_source, text_source, html_tree, text_tree = _final_templates(
        body, body_format, layout, layout_dir, bool(preheader.strip())
    )
    if marketing:
        check_layout(html_tree, text_tree)
    tracked_trees = None
    if tracking is not None and (tracking.opens or tracking.clicks):
        tracked_html, notrack = track_html(html_source, tracking)
        known = (*PERSONAL_VARIABLES, *CAMPAIGN_VARIABLES, *LAYOUT_VARIABLES, TOKEN_VARIABLE)
        tracked_trees = (
            check_template(tracked_html, "body (HTML part)", known),
            check_template(track_text(text_source, tracking, notrack), "body (text part)", known),
        )
    try:  # compiled from the checked trees: each template is parsed once
        templates = (
            CompiledTemplate(html_tree, autoescape=True, context=context),
            CompiledTemplate(text_tree, autoescape=False, context=context),
            CompiledTemplate(subject_tree, autoescape=False, context=context),
            CompiledTemplate(preheader_tree, autoescape=False, context=context),
        )
        tracked = tracked_trees and (
            CompiledTemplate(tracked_trees[0], autoescape=True, context=context),
            CompiledTemplate(tracked_trees[1], autoescape=False, context=context),
        )
    except TemplateError as exc:
        raise InvalidInput(f"template error: {exc}") from exc
    except (ValueError, RecursionError, MemoryError) as exc:
        raise InvalidInput(f"template error: {str(exc)[:200]}") from exc
    return templates, tracked


def campaign_context(
    *,
    org_name: str,
    postal_address: str,
    topics: list[str],
    category: str,
    campaign_id: int,
    campaign_name: str,
) -> dict[str, Any]:
    """The per-campaign template variables (CAMPAIGN_VARIABLES), and the footer in the
    default language (LAYOUT_VARIABLES) for whoever has none: the sample, the archive."""
    return {
        "org_name": org_name,
        "postal_address": postal_address,
        "topics": list(topics),
        "category": category,
        "campaign": {"id": campaign_id, "name": campaign_name, "category": category},
        FOOTER_VARIABLE: footer_words(DEFAULT, org_name=org_name, topics=list(topics)),
    }


SAMPLE_VALUES: dict[str, Any] = {
    "name": "Jane Doe",
    "first_name": "Jane",
    "email": "subscriber@example.org",
    "attributes": {},
    "unsubscribe_url": "https://octomail.example/u/sample",
    "preferences_url": "https://octomail.example/preferences/sample",
}


def check_campaign(
    *,
    body: str,
    body_format: str,
    layout: str,
    subject: str,
    category: str,
    context: dict[str, Any],
    layout_dir: str | Path = "",
    preheader: str = "",
) -> None:
    """Everything that can be known about a campaign's content before it is sent, checked
    at create/update: template safety and variables (on the final templates), the layout,
    the marketing footer, and a trial render within the limits. Raises InvalidInput."""
    html, text, subject_template, preheader_template = compile_campaign(
        body,
        body_format,
        layout,
        subject,
        context,
        layout_dir=layout_dir,
        marketing=category == "marketing",
        preheader=preheader,
    )
    values = dict(SAMPLE_VALUES)
    try:
        values["subject"] = subject_template.render(values)
        values["preheader"] = preheader_template.render(values)
        html.render(values)
        text.render(values)
    except (
        TemplateError,
        TypeError,
        ValueError,
        ArithmeticError,
        LookupError,
        RecursionError,
    ) as exc:
        raise InvalidInput(f"the campaign template cannot be rendered: {exc}") from exc
