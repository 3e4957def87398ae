"""assert_accessible(page): axe-core on the page as it is now; fails on serious or critical
violations, naming each rule, its help text and the first elements it flagged.

axe-core (MPL-2.0) is vendored for the tests only (tests/browser/vendor/axe-core, see its
MANIFEST.json); static/ never serves it. It is run through the DevTools protocol
(page.evaluate), which the page's Content-Security-Policy does not apply to, so the
policy the pages ship with stays on while they are checked."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


@cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Every violation axe reports for the page (WCAG 2.x A/AA and best practices)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source())
    return page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ['violations']});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ': ' + n.failureSummary),
            }));
        }"""
    )


def assert_accessible(page: Any, label: str = "") -> None:
    """Fail when axe finds a serious or critical violation on the page."""
    bad = [v for v in axe_violations(page) if v["impact"] in BLOCKING]
    where = label or page.url
    lines = [f"{v['impact']} {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in bad]
    assert not bad, f"accessibility violations on {where}:\n" + "\n".join(lines)
