"""Imports flow one way (docs/DESIGN.md, "Layers"): every import in app/, at module level,
inside functions and under `if TYPE_CHECKING`, is checked against the layer order, the way
tests/api/test_auth.py walks every route. A failure names the file, the line and the rule.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"

# Module prefix -> layer; the longest prefix wins (app.campaigns.cli is an entry point,
# the rest of app.campaigns a domain package).
ENTRY, DOMAIN, NEUTRAL, BASE = 4, 3, 2, 1
LAYER_NAMES = {ENTRY: "entry", DOMAIN: "domain", NEUTRAL: "neutral", BASE: "base"}
LAYERS = {
    "app.main": ENTRY,
    "app.cli": ENTRY,
    "app.compose": ENTRY,
    "app.background": ENTRY,
    "app.jobs": ENTRY,
    "app.terminal": ENTRY,  # progress bars for the command line
    "app.web": ENTRY,
    "app.campaigns.cli": ENTRY,
    "app.inbound.cli": ENTRY,
    "app.campaigns": DOMAIN,
    "app.inbound": DOMAIN,
    "app.sending": DOMAIN,
    "app.subscribers": DOMAIN,
    "app.users": DOMAIN,
    "app.signin": DOMAIN,
    "app.accounts": DOMAIN,
    "app.segments": DOMAIN,
    "app.webhooks": DOMAIN,
    "app.tracking": DOMAIN,
    "app.reports": DOMAIN,
    "app.mail": NEUTRAL,
    "app.links": NEUTRAL,
    "app.link_secrets": NEUTRAL,
    "app.tokens": NEUTRAL,
    "app.verp": NEUTRAL,
    "app.i18n": NEUTRAL,
    "app.migrate": NEUTRAL,
    "app.paging": NEUTRAL,
    "app.sessions": NEUTRAL,  # browser sessions as rows, for signin and accounts
    "app.observability": NEUTRAL,  # metrics, logs with request ids, database state
    "app.models": BASE,
    "app.db": BASE,
    "app.settings": BASE,
    "app.errors": BASE,
    "app.files": BASE,
    "app.web_paths": BASE,
}
# Which other domain packages a domain package may import (its own always).
DOMAIN_MAY_IMPORT = {
    "app.campaigns": {"app.sending", "app.subscribers", "app.segments"},
    "app.inbound": {"app.subscribers"},
    "app.sending": set(),
    "app.subscribers": {"app.segments", "app.sending"},
    "app.users": set(),
    "app.signin": {"app.users"},
    "app.accounts": {"app.subscribers", "app.signin", "app.users"},
    "app.segments": set(),
    "app.webhooks": {"app.subscribers", "app.inbound"},
    "app.tracking": set(),
    "app.reports": {"app.campaigns", "app.subscribers", "app.tracking"},
}
# What a base module may import from app (models imports nothing else from app).
BASE_MAY_IMPORT = {
    "app.models": set(),
    "app.errors": set(),
    "app.files": set(),
    "app.web_paths": set(),
    "app.settings": {"app.files", "app.errors"},
    "app.db": {"app.files", "app.settings", "app.errors"},
}
# Nothing imports the tops of the tree: the process entry points.
TOPS = {"app.main", "app.cli"}
# Frameworks only entry points use: domain code raises domain errors, web/errors.py maps them.
ENTRY_ONLY_PACKAGES = {"fastapi", "starlette", "typer", "uvicorn"}


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str  # the importing module
    target: str  # the imported module (or module.name for `from x import name`)
    in_function: bool
    commented: bool  # a comment on its line or the line above


def _module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _prefix(name: str, table: dict[str, object]) -> str | None:
    best = None
    for prefix in table:
        if (name == prefix or name.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return best


def _imports(path: Path) -> list[Import]:
    source = path.read_text()
    lines = source.splitlines()
    module = _module_name(path)
    found: list[Import] = []

    def commented(line: int) -> bool:
        return "#" in lines[line - 1] or lines[line - 2].strip().startswith("#")

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolve against this module's package
                    package = module.split(".")
                    package = package[: len(package) - child.level + path.name.startswith("__")]
                    base = ".".join([*package, base] if base else package)
                targets = [f"{base}.{alias.name}" for alias in child.names]
            for target in targets:
                found.append(
                    Import(path, child.lineno, module, target, in_function, commented(child.lineno))
                )
            visit(child, nested)

    visit(ast.parse(source, str(path)), False)
    return found


def _all_imports() -> list[Import]:
    return [i for path in sorted(APP.rglob("*.py")) for i in _imports(path)]


def _violation(imp: Import) -> str | None:
    """The rule this import breaks, or None."""
    top = imp.target.split(".")[0]
    src_prefix = _prefix(imp.module, LAYERS)
    assert src_prefix is not None, f"{imp.module} has no layer: add it to LAYERS"
    src = LAYERS[src_prefix]
    if top in ENTRY_ONLY_PACKAGES and src < ENTRY:
        return f"only entry points (web, cli) may import {top}"
    if top != "app" or imp.target == "app":
        return None
    dst_prefix = _prefix(imp.target, LAYERS)
    if dst_prefix is None:  # `from app import users`: the module is the name
        return None
    dst = LAYERS[dst_prefix]
    if dst_prefix in TOPS and src_prefix not in TOPS:
        return f"nothing imports {dst_prefix}, the entry point of a process"
    if dst > src:
        return f"a {LAYER_NAMES[src]} module may not import the {LAYER_NAMES[dst]} layer above it"
    if src == dst == DOMAIN and src_prefix != dst_prefix:
        allowed = DOMAIN_MAY_IMPORT[src_prefix]
        if dst_prefix not in allowed:
            return (
                f"{src_prefix} may import only {sorted(allowed) or 'no other domain package'}; "
                "pass the operation in (app/compose.py)"
            )
    base_allowed = BASE_MAY_IMPORT.get(src_prefix, set())
    if src == dst == BASE and src_prefix != dst_prefix and dst_prefix not in base_allowed:
        return f"{src_prefix} may import only {sorted(base_allowed) or 'nothing else from app'}"
    return None


def _where(imp: Import) -> str:
    return f"{imp.path.relative_to(APP.parent)}:{imp.line}"


def test_every_module_has_a_layer() -> None:
    missing = sorted(
        {i.module for i in _all_imports() if _prefix(i.module, LAYERS) is None}
        | {
            _module_name(p)
            for p in APP.rglob("*.py")
            if p.parent != APP or p.name != "__init__.py"
            if _prefix(_module_name(p), LAYERS) is None
        }
    )
    assert missing == [], "modules without a layer in tests/test_layers.py LAYERS"


def test_imports_flow_one_way() -> None:
    problems = [
        f"{_where(i)}: {i.module} imports {i.target}: {rule}"
        for i in _all_imports()
        if (rule := _violation(i)) is not None
    ]
    assert problems == [], "\n".join(problems)


def test_imports_inside_functions_say_why() -> None:
    """An import in a function hides a dependency from the top of the file; each one left
    (a heavy or optional import, a deliberate late binding) carries a comment saying why."""
    silent = [
        f"{_where(i)}: {i.module} imports {i.target} inside a function without a comment"
        for i in _all_imports()
        if i.in_function and not i.commented
    ]
    assert silent == [], "\n".join(silent)


def test_the_checker_sees_what_it_must_refuse() -> None:
    """The rules bite: an upward import, a sibling domain, a framework in the domain."""
    here = Path("app/x.py")
    assert _violation(Import(here, 1, "app.sending.store", "app.campaigns.audience", False, False))
    assert _violation(Import(here, 1, "app.subscribers.allowance", "app.inbound.x", True, True))
    assert _violation(Import(here, 1, "app.models.base", "app.db.get_engine", False, False))
    assert _violation(Import(here, 1, "app.mail.smtp", "app.sending.transport", False, False))
    assert _violation(Import(here, 1, "app.inbound.poller", "fastapi.Request", False, False))
    assert _violation(Import(here, 1, "app.web.deps", "app.cli.main", False, False))
    assert (
        _violation(Import(here, 1, "app.campaigns.service", "app.sending.x", False, False)) is None
    )
