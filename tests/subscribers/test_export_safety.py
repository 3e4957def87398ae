"""CSV export: no cell a spreadsheet would run as a formula, in any text column (OWASP).

Every free-text value comes from outside (the person, a referring page, an import), so each
column is read back from a real export, through the API and the command line.
"""

from __future__ import annotations

import csv
import io
import os
import stat
import subprocess
import sys

from sqlmodel import Session

from app.db import get_engine
from app.models import Subscriber

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORMULAS = [
    '=HYPERLINK("http://evil.example","x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]
TEXT_COLUMNS = ["email", "name", "status", "topics", "source", "referrer", "attributes"]


def _seed() -> None:
    with Session(get_engine()) as s:
        for i, formula in enumerate(FORMULAS):
            s.add(
                Subscriber(
                    email=f"{'=+-@'[i % 4]}cmd{i}@example.org",
                    name=formula,
                    source=formula,
                    referrer=formula,
                    attributes={"note": formula},
                )
            )
        s.add(
            Subscriber(
                email="plain@example.org",
                name="Plain Jane",
                source="form",
                referrer="https://blog.example/",
                attributes={"plan": "pro"},
            )
        )
        s.commit()


def _assert_safe(text: str) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == len(FORMULAS) + 1
    for row in rows:
        for column in TEXT_COLUMNS:
            assert not row[column].startswith(("=", "+", "-", "@", "\t", "\r")), (column, row)
    formula_rows = [r for r in rows if r["email"] != "plain@example.org"]
    for row, formula in zip(formula_rows, FORMULAS, strict=True):
        assert row["name"] == row["source"] == row["referrer"] == "'" + formula
        assert row["email"].startswith("'")
        assert row["email"][1:2] in "=+-@"
    plain = next(r for r in rows if r["email"] == "plain@example.org")
    assert (plain["name"], plain["source"], plain["referrer"]) == (
        "Plain Jane",
        "form",
        "https://blog.example/",
    )  # harmless text is left exactly as is
    return rows


def test_api_export_neutralises_formulas_in_every_text_column(api):
    _seed()
    response = api.get("/api/v1/subscribers/export")
    assert response.status_code == 200
    _assert_safe(response.text)


def test_cli_export_file_is_safe_and_owner_only(settings_env, tmp_path, session):
    _seed()
    out = tmp_path / "people.csv"
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "export", str(out)],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    _assert_safe(out.read_bytes().decode("utf-8"))


def test_attributes_that_start_like_a_formula_once_serialised_are_quoted() -> None:
    from app.subscribers.directory import cell

    assert cell('["=1+1"]') == '["=1+1"]'  # JSON starts with a bracket: nothing to run
    assert cell("-1") == "'-1"
    assert cell("") == ""
    assert cell(None) == ""
