"""The bounded Jinja sandbox: whatever a marketer writes, a render finishes quickly.

Jinja's sandbox stops templates reaching Python internals, not templates that compute too
much: `{{ 9 ** (9 ** 9) }}` holds the GIL (and so the whole process) for hours, `"x" * 10 ** 10`
eats the memory, nested loops never end. A worker thread cannot be killed, so the limits are
enforced inside the render itself:

- operators (`**`, `*`, `+`, `%`) and the filters, tests and methods that can multiply a
  value's size are checked BEFORE they run (number of bits, result length, format widths);
- every render has a work budget (`MAX_WORK`): each loop iteration, call and filter costs a
  step and every value produced costs its size, so loops, recursion and repeated doubling
  all stop after a bounded amount of work; no single value may exceed `MAX_VALUE`;
- the compiled code is instrumented once, at compile time (an AST pass), so the render hot
  path only pays where a template loops, calls or computes: plain `{{ name }}` costs nothing.

Every refusal is a `TemplateLimitError` (a Jinja `SecurityError`) whose message says which
limit was hit; the render layer turns it into a clear 422.
"""

from __future__ import annotations

import re
import string
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg, generate_lorem_ipsum
from markupsafe import Markup

MAX_INT_BITS = 4096
"""Largest integer a template may compute (about 1,200 decimal digits)."""
MAX_VALUE = 1_000_000
"""Largest value (characters, or items counted deeply) a template may build."""
MAX_WORK = 2_000_000
"""Work per render: loop iterations, calls and characters/items produced (about 1 s at most)."""
CALL_COST = 50
"""A call (a macro, a method) costs about as much as fifty loop iterations."""
MAX_OUTPUT = 2_000_000
"""Largest rendered part, in characters (Gmail clips a message past about 100 KB anyway)."""
MAX_WIDTH = 1000
"""Largest width or precision in a format string ("%10s", "{:>10}")."""

_SEQUENCES = (list, tuple, set, frozenset)
_JOINABLE = (list, tuple, str)
_CONTAINERS = (*_SEQUENCES, dict, range, Namespace, str)
_DATA_NAMES = frozenset({"attributes", "campaign", "topics", "footer"})
_CHARGE = "octomail_charge"  # the filter the compile-time pass wraps expressions in
_RAW_PREFIX = "octomail_raw_"
_RAW_FILTERS = frozenset(
    {
        "join",
        "default",
        "d",
        "length",
        "count",
        "upper",
        "lower",
        "title",
        "capitalize",
        "trim",
        "e",
        "escape",
        "string",
        "first",
        "last",
        "safe",
        "int",
        "float",
        "round",
        "abs",
        "truncate",
        "wordcount",
    }
)
_ITERATE = "octomail_iterate"


class TemplateLimitError(SecurityError):
    """A template went over one of the limits; the message says which."""


class _Budget(threading.local):
    work = MAX_WORK


_budget = _Budget()


def reset_budget() -> None:
    """Start a render with a full budget (renders are synchronous, one per thread)."""
    _budget.work = MAX_WORK


def _spend(units: int) -> None:
    left = _budget.work - units
    _budget.work = left
    if left < 0:
        raise TemplateLimitError(
            f"the template does too much work (over {MAX_WORK:,} steps of loops, calls and "
            "characters produced in one message)"
        )


def weight(value: Any, limit: int = MAX_VALUE) -> int:
    """The size of a value counted deeply (characters plus items), stopping past `limit`.

    Deep, because `[x] * 1000` holds 1000 references to one `x`: printing it costs 1000 x."""
    kind = type(value)
    if kind is str or kind is Markup:
        return len(value)
    if kind is int:
        return value.bit_length() // 3 + 1
    if kind not in _CONTAINERS and not isinstance(value, _CONTAINERS):
        return 1  # numbers, None, Undefined, generators, loop objects: small to print
    if kind is list or kind is tuple:  # the common case: a flat list of strings
        total = 1 + len(value)
        for item in value:
            if type(item) is not str:
                break
            total += len(item)
        else:
            return total
    return _deep_weight(value, limit)


def _deep_weight(value: Any, limit: int) -> int:
    """weight() of a container, item by item without recursion, stopping past `limit`."""
    total = 0
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        total += 1
        if isinstance(item, str):
            total += len(item)
        elif type(item) is int:
            total += item.bit_length() // 3
        elif isinstance(item, range):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, _SEQUENCES):
            stack.extend(item)
        elif isinstance(item, Namespace):
            stack.append(object.__getattribute__(item, "_Namespace__attrs"))
        if total > limit:
            break
    return total


def charge(value: Any, steps: int = 1) -> Any:
    """Count a produced value against the budget; refuse one over MAX_VALUE. Returns it."""
    size = weight(value)
    if size > MAX_VALUE:
        raise TemplateLimitError(
            f"the template builds a value of over {MAX_VALUE:,} characters or items"
        )
    budget = _budget
    left = budget.work - size - steps
    budget.work = left
    if left < 0:
        _spend(0)
    return value


def _iterate(iterable: Any) -> Iterator[Any]:
    """A loop's iterable, one step per iteration."""
    budget = _budget
    for item in iterable:
        left = budget.work - 1
        budget.work = left
        if left < 0:
            _spend(0)
        yield item


# ------------------------------------------------------------------ pre-checks


def _refuse(what: str) -> None:
    raise TemplateLimitError(what)


def _check_result_size(size: int, what: str) -> None:
    if size > MAX_VALUE:
        _refuse(f"{what} would build a value of {size:,} characters or items (limit {MAX_VALUE:,})")


_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")
_NUMBER = re.compile(r"\d+")


def check_printf(fmt: Any) -> None:
    """Refuse "%" formats with a huge width or precision ("%.99999999f") or a "*" width."""
    if not isinstance(fmt, str):
        return
    for match in _PRINTF.finditer(fmt):
        for part in match.groups():
            if part == "*" or (part and int(part) > MAX_WIDTH):
                _refuse(f"format width or precision over {MAX_WIDTH} (or '*') in {fmt[:40]!r}")


def check_format(fmt: str) -> None:
    """Refuse str.format specs with a huge width/precision or a nested {…} spec."""
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # str.format itself raises the clear error
    for _literal, _field, spec, _conversion in parsed:
        if not spec:
            continue
        if "{" in spec or any(int(n) > MAX_WIDTH for n in _NUMBER.findall(spec)):
            _refuse(f"format width or precision over {MAX_WIDTH} (or nested) in {fmt[:40]!r}")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "**":
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and abs(left) > 1
            and right * (abs(left).bit_length() - 1) > MAX_INT_BITS
        ):
            _refuse(
                f"{_short(left)} ** {_short(right)} is too large a number "
                f"(over {MAX_INT_BITS} bits)"
            )
    elif operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
                _refuse(f"the product is too large a number (over {MAX_INT_BITS} bits)")
        elif isinstance(right, int) and isinstance(left, (str, list, tuple)):
            _check_result_size(weight(left) * max(right, 0), "repeating a value")
        elif isinstance(left, int) and isinstance(right, (str, list, tuple)):
            _check_result_size(weight(right) * max(left, 0), "repeating a value")
    elif operator == "+":
        if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            _check_result_size(weight(left) + weight(right), "joining two values")
    elif operator == "%":
        check_printf(left)


def _short(number: int) -> str:
    text = str(number) if abs(number).bit_length() < 64 else f"a {number.bit_length()}-bit number"
    return text


_STR_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


def _check_method(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Pre-checks for the str methods whose result can be far larger than their inputs."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if not isinstance(owner, str):
        return
    if name in _STR_WIDTH_METHODS and args and isinstance(args[0], int):
        _check_result_size(max(len(owner), args[0]), f"str.{name}")
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int):
            _check_result_size(len(owner) + owner.count("\t") * size, "str.expandtabs")
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
    elif name == "join" and args:
        items = args[0]
        if not isinstance(items, (list, tuple, str)):
            _refuse("str.join takes a list here (use the join filter)")
        _check_result_size(weight(items) + len(owner) * max(len(items) - 1, 0), "join")
    elif name == "translate" and args:
        table = args[0]
        longest = (
            max((weight(v) for v in table.values()), default=1) if isinstance(table, dict) else 1
        )
        _check_result_size(len(owner) * max(longest, 1), "str.translate")


def _check_replace(text: Any, old: Any, new: Any, count: Any) -> None:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    hits = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    _check_result_size(len(text) + hits * max(len(new) - len(old), 0), "replace")


# ------------------------------------------------------------------ filters and globals


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that pays for its input and result, with a pre-check for the risky ones."""
    skip = 1 if _PassArg.from_obj(func) is not None else 0
    check = _FILTER_CHECKS.get(name)
    cost = _FILTER_COST.get(name, 0)

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if cost and len(args) > skip:
            _spend(cost * weight(args[skip]))
        if check is not None:
            check(*args[skip:], **kwargs)
        return charge(func(*args, **kwargs), 3)  # a filter call costs 2 steps

    return guarded


def _guard_test(func: Callable[..., Any]) -> Callable[..., Any]:
    skip = 1 if _PassArg.from_obj(func) is not None else 0

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        for arg in args[skip:]:
            charge(arg)
        return func(*args, **kwargs)

    return guarded


def _center(value: Any, width: Any = 80, *_a: Any, **_k: Any) -> None:
    if isinstance(width, int):
        _check_result_size(max(width, 0), "center")


def _indent(value: Any, width: Any = 4, *_a: Any, **kwargs: Any) -> None:
    width = kwargs.get("width", width)
    step = width if isinstance(width, int) else len(str(width))
    text = str(value)
    _check_result_size(len(text) + (text.count("\n") + 1) * max(step, 0), "indent")


def _replace(value: Any, old: Any = "", new: Any = "", count: Any = None, **_k: Any) -> None:
    _check_replace(str(value), str(old), str(new), -1 if count is None else count)


def _format(value: Any, *_a: Any, **_k: Any) -> None:
    check_printf(value)


def _wordwrap(
    value: Any,
    width: Any = 79,
    break_long_words: Any = True,
    wrapstring: Any = None,
    *_a: Any,
    **kwargs: Any,
) -> None:
    wrapstring = kwargs.get("wrapstring", wrapstring)
    if wrapstring is not None:
        text = str(value)
        _check_result_size(len(text) * (1 + len(str(wrapstring))), "wordwrap")


def _join(value: Any, d: Any = "", *_a: Any, **kwargs: Any) -> None:
    if kwargs:
        d = kwargs.get("d", d)
    separator = len(d) if type(d) is str else len(str(d))
    if type(value) in _JOINABLE or isinstance(value, _JOINABLE):
        if len(value) > 1:
            _check_result_size(weight(value) + separator * (len(value) - 1), "join")
    elif separator > MAX_WIDTH:
        # An iterator's length is unknown until it is consumed: keep the separator short.
        _refuse(f"a join separator over {MAX_WIDTH} characters")


def _nested_size(value: Any, step: int) -> int:
    """Characters of a pretty-printed value: each item indented `step` per nesting level."""
    total = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack and total <= MAX_VALUE:
        item, depth = stack.pop()
        total += weight(item, 64) if not isinstance(item, (dict, list, tuple)) else 2
        total += depth * step
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for pair in item.items() for v in pair)
        elif isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1) for v in item)
    return total


def _tojson(value: Any, indent: Any = None, **_k: Any) -> None:
    step = indent if isinstance(indent, int) else len(indent) if isinstance(indent, str) else 0
    if step:
        _check_result_size(_nested_size(value, max(step, 0)), "tojson")


def _pprint(value: Any, *_a: Any, **_k: Any) -> None:
    _check_result_size(_nested_size(value, 1), "pprint")


def _count_arg(position: int, keyword: str, what: str) -> Callable[..., None]:
    def check(*args: Any, **kwargs: Any) -> None:
        value = kwargs.get(keyword, args[position] if len(args) > position else None)
        if isinstance(value, int) and value > 10_000:
            _refuse(f"{what} over 10,000")

    return check


def _sum(iterable: Any = (), attribute: Any = None, start: Any = 0, **kwargs: Any) -> None:
    start = kwargs.get("start", start)
    if not isinstance(start, (int, float)):
        _refuse("sum adds numbers only")


_FILTER_COST = {
    "pprint": 40,
    "tojson": 8,
    "urlize": 8,
    "groupby": 8,
    "wordwrap": 4,
    "dictsort": 4,
    "sort": 4,
    "unique": 4,
    "xmlattr": 4,
    "striptags": 4,
    "title": 2,
    "wordcount": 2,
    "urlencode": 4,
    "map": 2,
    "select": 2,
    "reject": 2,
    "selectattr": 2,
    "rejectattr": 2,
    "sum": 2,
    "min": 2,
    "max": 2,
}
"""Filters whose work grows with their input pay for it per item (measured, relative to a
loop iteration); the others are cheap on their input and pay for what they produce."""

_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _center,
    "indent": _indent,
    "replace": _replace,
    "format": _format,
    "wordwrap": _wordwrap,
    "join": _join,
    "tojson": _tojson,
    "pprint": _pprint,
    "batch": _count_arg(1, "linecount", "batch size"),
    "slice": _count_arg(1, "slices", "slice count"),
    "sum": _sum,
}


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if not all(isinstance(v, int) for v in (n, min, max)) or n > 20 or max > 200:
        _refuse("lipsum is limited to 20 paragraphs of 200 words")
    _spend(10 * n * max if n > 0 and max > 0 else 0)  # built word by word in Python
    return generate_lorem_ipsum(n=n, html=html, min=min, max=max)


# ------------------------------------------------------------------ compile-time pass


class _Instrument:
    """Wrap the expressions that can cost work in the charge filter, once per template.

    `safe_names` are string variables the template never reassigns: their size is bounded by
    the data, so printing or comparing them costs nothing extra on the hot path; outside loops
    and macros the same holds for attributes of the data (`{{ attributes.city }}`). Filters,
    calls and operators pay for their results themselves and are not wrapped again."""

    def __init__(self, tree: nodes.Template, safe_names: frozenset[str]) -> None:
        assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
        self.safe = safe_names - assigned
        self.data = (safe_names | _DATA_NAMES) - assigned
        self.depth = 0  # inside how many loops, macros and call blocks

    def _cheap(self, node: nodes.Node) -> bool:
        if isinstance(node, (nodes.Const, nodes.TemplateData)):
            return True
        if isinstance(node, nodes.Name):
            return node.name in self.safe
        return isinstance(node, nodes.Getattr | nodes.Getitem) and self._data(node)

    def _data(self, node: nodes.Node) -> bool:
        """The data, or an attribute or item of it, outside loops and macros."""
        if self.depth:
            return False
        while isinstance(node, nodes.Getattr) or (
            isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const)
        ):
            node = node.node
        return isinstance(node, nodes.Name) and node.name in self.data

    def _wrap(self, node: nodes.Expr, name: str = _CHARGE) -> nodes.Expr:
        return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)

    def _expr(self, node: Any) -> Any:
        """Visit an expression's children, then wrap it when it builds a value."""
        if not isinstance(node, nodes.Node):
            return node
        self.visit(node)
        if (
            isinstance(node, (nodes.Concat, nodes.List, nodes.Dict))
            or (isinstance(node, nodes.Tuple) and node.ctx == "load")
            or (isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Slice))
        ):
            return self._wrap(node)
        return node

    def visit(self, node: nodes.Node) -> None:
        if isinstance(node, nodes.For):
            node.iter = self._wrap(self._expr(node.iter), _ITERATE)
            self.depth += 1
            for child in (*node.body, *node.else_):
                self.visit(child)
            if node.test is not None:
                node.test = self._expr(node.test)
            self.depth -= 1
            return
        if isinstance(node, (nodes.Macro, nodes.CallBlock)):
            self.depth += 1
            self._visit_fields(node)
            self.depth -= 1
            return
        if isinstance(node, nodes.Output):
            node.nodes = [self._charged(child) for child in node.nodes]
            return
        if isinstance(node, nodes.Compare):
            node.expr = self._charged(node.expr)
            for operand in node.ops:
                operand.expr = self._charged(operand.expr)
            return
        self._visit_fields(node)

    def _visit_fields(self, node: nodes.Node) -> None:
        for field, value in node.iter_fields():
            if isinstance(value, list):
                setattr(node, field, [self._child(node, field, v) for v in value])
            elif isinstance(value, nodes.Node):
                setattr(node, field, self._child(node, field, value))

    def _raw_ok(self, node: nodes.Node) -> bool:
        """A linear filter with short constant arguments applied, outside loops and macros,
        to the data: its cost is bounded by the data, so it runs unwrapped (the hot path)."""
        return (
            not self.depth
            and isinstance(node, nodes.Filter)
            and node.name in _RAW_FILTERS
            and node.node is not None
            and not node.kwargs
            and node.dyn_args is None
            and node.dyn_kwargs is None
            and all(isinstance(a, nodes.Const) and weight(a.value) <= 100 for a in node.args)
            and (self._data(node.node) or self._raw_ok(node.node))
        )

    def _charged(self, node: nodes.Expr) -> nodes.Expr:
        if self._cheap(node):
            return node
        if self._raw_ok(node):
            filters: nodes.Expr | None = node
            while isinstance(filters, nodes.Filter):
                filters.name = _RAW_PREFIX + filters.name
                filters = filters.node
            return node
        node = self._expr(node)
        if isinstance(node, (nodes.Filter, nodes.Call)) or (
            isinstance(node, nodes.BinExpr) and node.operator in BoundedSandbox.intercepted_binops
        ):
            return node  # already paid for by the filter wrapper, call() or call_binop()
        return self._wrap(node)

    def _child(self, parent: nodes.Node, field: str, child: Any) -> Any:
        if not isinstance(child, nodes.Node):
            return child
        if isinstance(child, nodes.Expr) and not (
            # CallBlock.call and FilterBlock.filter must stay what they are.
            (isinstance(parent, nodes.CallBlock) and field == "call")
            or (isinstance(parent, nodes.FilterBlock) and field == "filter")
            or (isinstance(child, nodes.Tuple) and child.ctx != "load")
        ):
            return self._expr(child)
        self.visit(child)
        return child


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """ImmutableSandboxedEnvironment with operator, filter, call and work limits."""

    intercepted_binops = frozenset({"**", "*", "+", "%"})

    def __init__(self, *args: Any, safe_names: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.safe_names = frozenset(safe_names)
        raw = {_RAW_PREFIX + name: self.filters[name] for name in _RAW_FILTERS}
        self.filters = {name: _guard_filter(name, f) for name, f in self.filters.items()}
        self.filters.update(raw)
        self.filters[_CHARGE] = charge
        self.filters[_ITERATE] = _iterate
        # jinja2's tests dict is inferred as dict[str, function], which mypy does not call.
        self.tests = {name: _guard_test(t) for name, t in self.tests.items()}  # type: ignore[arg-type]
        self.globals["lipsum"] = _lipsum

    def _generate(self, source: nodes.Template, *args: Any, **kwargs: Any) -> str:
        _Instrument(source, self.safe_names).visit(source)
        source.set_environment(self)
        return super()._generate(source, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return charge(self.binop_table[operator](left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend(CALL_COST)
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, (str, list, tuple)):  # str methods, index() and count() scan
            charge(owner)
        for arg in args:
            charge(arg)
        for arg in kwargs.values():
            charge(arg)
        _check_method(__obj, args, kwargs)
        return charge(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            check_format(fmt)
            return wrapper(*args, **kwargs)

        return checked


__all__ = ["MAX_OUTPUT", "BoundedSandbox", "Markup", "TemplateLimitError", "reset_budget"]
