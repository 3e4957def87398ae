"""Campaign templates compiled once: Markdown, layout, CSS inlining, text version, sandbox.

Marketers write Jinja in a sandbox (ImmutableSandboxedEnvironment): no `_`-attributes, no
include/import/extends, and a static check at compile time so a hostile template fails with a
clear error before anything is sent. CSS is inlined ONCE per campaign on the template source:
Jinja tags are swapped for inert placeholders around css-inline and inscriptis, then restored,
so personalisation never needs re-inlining per recipient.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from types import CodeType
from typing import Any

import css_inline
from inscriptis import get_text
from inscriptis.model.config import ParserConfig
from jinja2 import ChainableUndefined, FileSystemLoader, TemplateError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markdown_it import MarkdownIt

from app.errors import InvalidInput
from app.sending.mime import QPiece, qp_piece
from app.web_paths import TEMPLATE_DIR

EMAIL_TEMPLATES = TEMPLATE_DIR / "email"
_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_PLACEHOLDER = re.compile(r"OCTOJINJA(\d{5})Z")
_COMMENT_PLACEHOLDER = re.compile(r"<!--OCTOJINJA(\d{5})Z-->")
_CONTENT_SLOT = re.compile(r"\{\{-?\s*content\s*(\|\s*safe\s*)?-?\}\}")
_LAYOUT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,60}$")
_FORBIDDEN_TAGS = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


class _Undefined(ChainableUndefined):
    """Missing values render empty, but a sandbox violation raises instead of hiding."""

    __slots__ = ()

    def __str__(self) -> str:
        if isinstance(self._undefined_exception, type) and issubclass(
                self._undefined_exception, SecurityError):
            self._fail_with_undefined_error()
        return ""


@lru_cache(maxsize=2)
def environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    """The sandbox: autoescaped for HTML, plain for text and subjects."""
    return ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(EMAIL_TEMPLATES)),
        autoescape=autoescape,
        undefined=_Undefined,  # a missing attribute renders empty, never crashes a send
        keep_trailing_newline=True,
    )


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True, "typographer": False}).enable(
        ["table", "strikethrough"]
    )


def check_template(source: str, what: str) -> None:
    """Refuse templates that reach for Python internals or other files, with a clear message."""
    env = environment(True)
    try:
        tree = env.parse(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise InvalidInput(f"{what}: template error{where}: {exc.message}") from exc
    for node in tree.find_all(_FORBIDDEN_TAGS):
        raise InvalidInput(f"{what}: {type(node).__name__.lower()} is not allowed in email "
                           f"templates (line {node.lineno})")
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", "")
        if isinstance(name, str) and (name.startswith("_") or name in {"mro", "func_globals"}):
            raise InvalidInput(f"{what}: '{name}' is not allowed in templates "
                               f"(line {node.lineno})")
    for const in tree.find_all(nodes.Const):
        if isinstance(const.value, str) and const.value.startswith("__"):
            raise InvalidInput(f"{what}: '{const.value}' is not allowed in templates "
                               f"(line {const.lineno})")


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


def load_layout(name: str) -> tuple[str, str | None]:
    """The HTML layout source and its optional text counterpart from templates/email/."""
    if not _LAYOUT_NAME.match(name or ""):
        raise InvalidInput(f"unknown email layout: {name!r}")
    html_path: Path = EMAIL_TEMPLATES / f"{name}.html"
    if not html_path.is_file():
        raise InvalidInput(f"unknown email layout: {name!r}")
    text_path = EMAIL_TEMPLATES / f"{name}.txt"
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


def html_to_text(html_source: str) -> str:
    """A plain-text Jinja template from an HTML Jinja template (links shown as [text](url))."""
    protector = _Protector()
    text = get_text(protector.protect(html_source), ParserConfig(display_links=True))
    return protector.restore(text).strip() + "\n"


class CompiledTemplate:
    """A sandboxed template plus the QP encoding of its static text, computed once."""

    def __init__(self, source: str, *, autoescape: bool, context: dict[str, Any]) -> None:
        env = environment(autoescape)
        code = env.compile(source)
        # A plain dict, not make_globals()' ChainMap: Jinja copies the globals per render.
        self.template = env.template_class.from_code(env, code, {**env.globals, **context}, None)
        self.cache: dict[str, QPiece] = {
            const: qp_piece(const) for const in _str_constants(code) if const
        }

    def render(self, values: dict[str, Any]) -> str:
        return self.template.render(values)

    def qp_pieces(self, values: dict[str, Any]) -> list[QPiece]:
        """The rendered template as QP pieces: static ones from the cache, values encoded now."""
        get = self.cache.get
        return [get(piece) or qp_piece(piece) for piece in self.template.generate(values) if piece]


def _str_constants(code: CodeType) -> Iterator[str]:
    for const in code.co_consts:
        if isinstance(const, str):
            yield const
        elif isinstance(const, CodeType):
            yield from _str_constants(const)


def compile_campaign(body: str, body_format: str, layout: str, subject: str,
                     context: dict[str, Any]) -> tuple[CompiledTemplate, CompiledTemplate,
                                                        CompiledTemplate]:
    """(html, text, subject) templates for one campaign; raises InvalidInput on bad input."""
    check_template(body, "body")
    check_template(subject, "subject")
    body_html = body_to_html(body, body_format)
    layout_html, layout_text = load_layout(layout)
    html_source = inline_css(_fill_slot(layout_html, body_html))
    if layout_text is not None:
        text_source = _fill_slot(layout_text, html_to_text(body_html).rstrip("\n"))
    else:
        text_source = html_to_text(_fill_slot(layout_html, body_html))
    try:
        return (
            CompiledTemplate(html_source, autoescape=True, context=context),
            CompiledTemplate(text_source, autoescape=False, context=context),
            CompiledTemplate(subject, autoescape=False, context=context),
        )
    except TemplateError as exc:
        raise InvalidInput(f"template error: {exc}") from exc
