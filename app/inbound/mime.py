"""The standard library's MIME parser, without its costliest step for inbound mail.

email.feedparser compiles a regular expression for every multipart boundary it meets. Real
boundaries are unique per message, so the `re` cache never helps and each multipart message
(most mail: text + HTML alternatives, every bounce and complaint report) pays more for the
compile than for parsing the rest (docs/DESIGN.md, "Measured figures"). Here the parser
module is loaded a second time, as our private copy, and its `re` answers that one pattern
with an equivalent matcher: the boundary as a plain prefix test, then one precompiled regex
for what may follow it. The stdlib module itself is not touched; everything else goes to
the real `re`.

HeaderCachingMessage, the message class the inbound policy builds, saves the other big cost:
parsing the same header again on every access.
"""

from __future__ import annotations

import importlib.util
import re
from email import feedparser as _stdlib_feedparser
from email.message import EmailMessage, Message
from email.policy import Policy
from types import ModuleType
from typing import Any

# What feedparser appends to re.escape("--" + boundary) (Python 3.8 to 3.13).
_HEAD = "(?P<sep>"
_TAIL = r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
_AFTER = re.compile(_TAIL[1:])
_CHUNK = 8192  # email.parser.Parser feeds the parser in chunks of this size


class _BoundaryMatch:
    """A match of the boundary pattern: the separator, then _AFTER's groups."""

    __slots__ = ("_sep", "_after")

    def __init__(self, sep: str, after: re.Match[str]) -> None:
        self._sep, self._after = sep, after

    def group(self, *names: str | int) -> Any:
        if len(names) != 1:
            return tuple(self.group(n) for n in names)
        name = names[0]
        if name == "sep" or name == 1:
            return self._sep
        if name == 0:
            return self._sep + self._after.group(0)
        return self._after.group(name if isinstance(name, str) else name - 1)


class _Boundary:
    """Matches what re.compile(_HEAD + re.escape(sep) + _TAIL).match matches."""

    __slots__ = ("sep", "pattern")

    def __init__(self, sep: str, pattern: str) -> None:
        self.sep, self.pattern = sep, pattern

    def match(self, line: str) -> _BoundaryMatch | None:
        if not line.startswith(self.sep):
            return None
        after = _AFTER.match(line, len(self.sep))
        return None if after is None else _BoundaryMatch(self.sep, after)


class _Re:
    """The `re` module as the private parser copy sees it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)

    @staticmethod
    def compile(pattern: Any, flags: int = 0) -> Any:
        if (
            flags == 0
            and isinstance(pattern, str)
            and pattern.startswith(_HEAD)
            and pattern.endswith(_TAIL)
        ):
            escaped = pattern[len(_HEAD) : -len(_TAIL)]
            sep = _unescape(escaped)
            if sep is not None and re.escape(sep) == escaped:
                return _Boundary(sep, pattern)
        return re.compile(pattern, flags)


def _unescape(escaped: str) -> str | None:
    """The text re.escape() turned into `escaped` (it only adds backslashes)."""
    out, index = [], 0
    while index < len(escaped):
        char = escaped[index]
        if char == "\\":
            index += 1
            if index == len(escaped):
                return None
            char = escaped[index]
        out.append(char)
        index += 1
    return "".join(out)


def _private_feedparser() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"{__name__}._feedparser", _stdlib_feedparser.__file__
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # A module's attributes are unknown to the type checker; this one exists (`import re`).
    module.re = _Re()  # type: ignore[attr-defined]
    return module


_feedparser = _private_feedparser()
_MISSING = object()


class HeaderCachingMessage(EmailMessage):
    """An EmailMessage that parses each header once and caches it; any change to the
    headers drops the caches, so it stays an ordinary, changeable message.

    policy.default re-parses a header on every access (get_content_type() alone reads
    Content-Type each time, and the parser and the classifier ask a dozen times) and finds
    it by scanning every header; classification never changes a message, so index the
    headers once and parse each one once. Any change to the headers drops the caches."""

    _headers: list[tuple[str, str]]  # set by email.message.Message; typeshed omits it

    def get(self, name: str, failobj: Any = None) -> Any:
        cache = self.__dict__.get("_parsed")
        if cache is None:
            cache = self.__dict__["_parsed"] = {}
            first: dict[str, tuple[str, str]] = {}
            for item in self._headers:
                first.setdefault(item[0].lower(), item)
            self.__dict__["_first"] = first
        key = name.lower()
        if key in cache:
            value = cache[key]
        else:
            raw = self.__dict__["_first"].get(key)
            value = cache[key] = _MISSING if raw is None else self.policy.header_fetch_parse(*raw)
        return failobj if value is _MISSING else value

    def get_content_type(self) -> str:
        ctype = self.__dict__.get("_ctype")
        if ctype is None:
            ctype = self.__dict__["_ctype"] = super().get_content_type()
        return ctype

    def _get_params_preserve(self, failobj: Any, header: str) -> Any:
        # Behind get_param(): charset, boundary, report-type... each asked several times.
        cache = self.__dict__.setdefault("_params", {})
        key = header.lower()
        if key not in cache:
            # Private in CPython's email.message (behind get_param); typeshed omits it.
            cache[key] = super()._get_params_preserve(_MISSING, header)  # type: ignore[misc]
        params = cache[key]
        return failobj if params is _MISSING else list(params)

    def _changed(self) -> None:
        for key in ("_parsed", "_first", "_ctype", "_params"):
            self.__dict__.pop(key, None)

    def set_raw(self, name: str, value: str) -> None:
        cached = self.__dict__  # the parser calls this for every header, before any get
        if "_parsed" in cached or "_ctype" in cached or "_params" in cached:
            self._changed()
        self._headers.append((name, value))

    def __setitem__(self, name: str, val: Any) -> None:
        self._changed()
        super().__setitem__(name, val)

    def __delitem__(self, name: str) -> None:
        self._changed()
        super().__delitem__(name)

    def set_default_type(self, ctype: str) -> None:
        self._changed()
        super().set_default_type(ctype)

    def add_header(self, _name: str, _value: str, **_params: Any) -> None:
        self._changed()
        super().add_header(_name, _value, **_params)

    def replace_header(self, _name: str, _value: Any) -> None:
        self._changed()
        super().replace_header(_name, _value)


def parse_bytes(raw: bytes, policy: Policy) -> Message:
    """What email.message_from_bytes(raw, policy=policy) returns."""
    text = raw.decode("ascii", errors="surrogateescape")
    parser = _feedparser.FeedParser(policy=policy)
    for start in range(0, len(text), _CHUNK):
        parser.feed(text[start : start + _CHUNK])
    return parser.close()
