"""CSV import from the admin pages: the attestation is required, a bad file is refused on
the form (422, values kept), a good one runs in the background; the report page shows the
progress, then the rejected lines (line, value, reason) and their CSV."""

from __future__ import annotations

import csv
import io
import time

from sqlmodel import select

from app.db import session_scope
from app.models import Role, Subscriber
from app.subscribers.topics import create_topic

CSV = (
    "email,name,city\n"
    "ann@example.org,Ann,Lyon\n"
    "not-an-address,Bob,Paris\n"
    "cy@example.org,Cy,Nice\n"
    "=cmd@,Evil,Rome\n"
)


def _wait_done(client, url: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = client.get(url).text
        if "Importing…" not in text:
            return text
        time.sleep(0.2)
    raise AssertionError("the import did not finish")


def _post(editor, data: dict, content: str | None = CSV):
    files = {"file": ("people.csv", content.encode(), "text/csv")} if content is not None else None
    return editor.client.post(
        "/admin/subscribers/import", data={"csrf_token": editor.csrf, **data}, files=files
    )


def test_form_errors_keep_values(sign_in_as) -> None:
    with session_scope() as db:
        create_topic(db, slug="news", name="News")
    editor = sign_in_as(Role.EDITOR)
    page = editor.client.get("/admin/subscribers/import")
    assert "I confirm that everyone in this file agreed" in page.text
    missing = _post(editor, {"topic": "news", "consent_source": "fair"})
    assert missing.status_code == 422
    assert "There is a problem" in missing.text
    assert 'href="#f-attest"' in missing.text
    assert 'value="fair"' in missing.text
    assert '<option value="news" selected>' in missing.text
    no_source = _post(editor, {"topic": "news", "attest": "yes"})
    assert no_source.status_code == 422
    assert "Say how the people" in no_source.text
    no_email = _post(editor, {"consent_source": "fair", "attest": "yes"}, "name\nAnn\n")
    assert no_email.status_code == 422
    assert "no &#39;email&#39; column" in no_email.text
    no_file = _post(editor, {"consent_source": "fair", "attest": "yes"}, None)
    assert no_file.status_code == 422
    assert "Choose a CSV file" in no_file.text


def test_import_runs_in_the_background_and_reports_lines(sign_in_as) -> None:
    with session_scope() as db:
        create_topic(db, slug="news", name="News")
    editor = sign_in_as(Role.EDITOR)
    started = _post(editor, {"topic": "news", "consent_source": "fair 2026", "attest": "yes"})
    assert started.status_code == 303
    report_url = started.headers["location"]
    assert report_url.startswith("/admin/imports/")
    text = _wait_done(editor.client, report_url)
    assert "The import is finished." in text
    assert "<dt>Imported</dt><dd>2</dd>" in text
    assert "<dt>Rejected</dt><dd>2</dd>" in text
    assert '<td class="num">3</td><td class="wrap">not-an-address</td>' in text
    assert '<td class="num">5</td>' in text
    with session_scope() as db:
        emails = sorted(s.email for s in db.exec(select(Subscriber)))
    assert emails == ["ann@example.org", "cy@example.org"]
    rejected = editor.client.get(report_url + "/rejected.csv")
    assert rejected.status_code == 200
    rows = list(csv.reader(io.StringIO(rejected.text)))
    assert rows[0] == ["line", "value", "reason", "email", "name", "city"]
    assert rows[1][:2] == ["3", "not-an-address"]
    assert rows[1][3:] == [
        "not-an-address",
        "Bob",
        "Paris",
    ]
    assert rows[2][3] == "'=cmd@"  # no formula for a spreadsheet to run
    # A viewer may read the report; htmx gets the report block alone.
    viewer = sign_in_as(Role.VIEWER)
    fragment = viewer.client.get(report_url, headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="import-report"')
    assert "hx-trigger" not in fragment.text  # finished: polling stops
    assert viewer.client.get("/admin/imports/0123456789abcdef").status_code == 404
    assert viewer.client.get("/admin/imports/..%2F..%2Fetc").status_code == 404


def test_a_running_import_polls_its_report(sign_in_as, settings_env) -> None:
    """The state file of a running job: a progress bar, a refresh link, the htmx trigger."""
    from app.settings import get_settings
    from app.subscribers import import_jobs

    folder = import_jobs.private_dir(get_settings().var_dir / "imports" / "00000000000000aa")
    job = import_jobs.ImportJob("00000000000000aa", "big.csv", None, "fair", "ed@x", 9, 101)
    job.rows = 50
    import_jobs._write(folder, job)
    viewer = sign_in_as(Role.VIEWER)
    page = viewer.client.get("/admin/imports/00000000000000aa")
    assert 'hx-trigger="every 2s' in page.text
    assert "50 of about 100 lines read" in page.text
    assert '<progress id="import-progress" value="50" max="100">' in page.text
    assert 'href="/admin/imports/00000000000000aa">Refresh' in page.text


def test_an_import_whose_process_died_says_so(sign_in_as, settings_env) -> None:
    """A running state that stopped moving: the page says interrupted and how to recover,
    and stops polling."""
    from app.settings import get_settings
    from app.subscribers import import_jobs

    folder = import_jobs.private_dir(get_settings().var_dir / "imports" / "00000000000000bb")
    job = import_jobs.ImportJob("00000000000000bb", "big.csv", None, "fair", "ed@x", 9, 101)
    import_jobs._write(folder, job)
    state = folder / "state.json"
    text = state.read_text().replace(f'"updated_at": {job.updated_at}', '"updated_at": 1.0')
    state.write_text(text)
    page = sign_in_as(Role.VIEWER).client.get("/admin/imports/00000000000000bb")
    assert "The import was interrupted." in page.text
    assert "Import the same file again" in page.text
    assert "hx-trigger" not in page.text
