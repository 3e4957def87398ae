"""THE marketer journey in Chromium, against the app served for real (uvicorn with its
embedded scheduler and sending worker) and a real SMTP server (aiosmtpd) that refuses one
address: first-run admin creation from the setup link, sign out and in, a topic, a CSV
import with bad lines and their errors, a segment, a campaign written, previewed as a
subscriber and test-sent, scheduled a few seconds ahead, watched until it is done, and its
failure read with the server's reply. axe-core on every page; screenshots of each at
1280x800 and 375x812 in test-artifacts/screenshots/test_the_marketer_journey-*/."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.browser.accessibility import assert_accessible
from tests.browser.conftest import DESKTOP, PHONE, shoot

REFUSED = "refused@example.org"
REFUSAL = (
    f"550 5.1.1 <{REFUSED}>: Recipient address rejected: User unknown in local recipient table"
)
PASSWORD = "a long enough password"
CSV = (
    "email,name,city\n"
    "ann@example.org,Ann Archer,Paris\n"
    "bob-at-example.org,Bob,Paris\n"
    f"{REFUSED},Rae Fused,Paris\n"
    "cy@example.org,Cy,Lyon\n"
)
NO_SIDEWAYS = """() => document.documentElement.scrollWidth <= window.innerWidth ? [] :
  [...document.querySelectorAll('body *')]
  .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1
          && !el.closest('.table-wrap, .preview-frame'))
  .slice(0, 5).map(el => el.tagName + '.' + el.className)"""


class _Server:
    """An aiosmtpd handler: accepts everyone but REFUSED, keeps what it received."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address.lower() == REFUSED:
            return REFUSAL
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.received.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server(settings_env: dict[str, str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The SMTP server the served app sends to, with its scheduler and worker embedded
    (requested before live_server, whose process takes the environment as it is then)."""
    from aiosmtpd.controller import Controller

    from app.settings import get_settings

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    handler = _Server()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("OCTOMAIL_SMTP_URLS", f"smtp://127.0.0.1:{port}")
    monkeypatch.setenv("OCTOMAIL_EMBEDDED_WORKER", "true")
    monkeypatch.setenv("OCTOMAIL_EMBEDDED_SCHEDULER", "true")
    get_settings.cache_clear()
    try:
        yield handler
    finally:
        controller.stop()


def look(page, directory: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    """Screenshots at both widths, axe at both, nothing wider than a phone but tables."""
    shoot(page, directory, name)
    assert_accessible(page, name)
    page.set_viewport_size(PHONE)
    assert page.evaluate(NO_SIDEWAYS) == [], f"{name}: wider than a phone"
    assert_accessible(page, name + " (phone)")
    page.set_viewport_size(DESKTOP)


def _first_admin(page, base: str, shots: Path) -> None:  # type: ignore[no-untyped-def]
    from app.cli import first_run_hint
    from app.settings import get_settings

    link = re.search(r"(http://\S+/admin/setup/\S+)", first_run_hint(get_settings()))[1]
    page.goto(link)
    look(page, shots, "01-setup")
    page.fill("#f-email", "marketer@example.org")
    page.fill("#f-password", PASSWORD)
    page.fill("#f-password_again", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    page.locator(".nav-wide button", has_text="Sign out").click()
    page.wait_for_url(f"{base}/admin/login")
    look(page, shots, "02-login")
    page.fill("#f-email", "marketer@example.org")
    page.fill("#f-password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    look(page, shots, "03-dashboard")


def _topic_and_import(page, base: str, shots: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/admin/topics/new")
    page.fill("#f-slug", "news")
    page.fill("#f-name", "News")
    page.click("main button[type=submit]")
    assert "created" in page.locator("[role=status]").first.inner_text()
    look(page, shots, "04-topics")

    page.goto(f"{base}/admin/subscribers/import")
    page.set_input_files(
        "#f-file", files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    page.select_option("#f-topic", "news")
    page.fill("#f-consent_source", "sign-up sheet at the Paris fair")
    page.check("#f-attest")
    look(page, shots, "05-import-form")
    page.click("form[action='/admin/subscribers/import'] button[type=submit]")
    page.wait_for_url(f"{base}/admin/imports/*")
    page.wait_for_selector("text=The import is finished.", timeout=60_000)
    rejected = page.locator("table tbody tr").all_inner_texts()
    assert any("3" in row and "bob-at-example.org" in row for row in rejected), rejected
    look(page, shots, "06-import-report")


def _segment(page, base: str, shots: Path) -> str:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/admin/segments/new")
    page.fill("#f-name", "Parisians")
    page.select_option("#f-field_0", "attributes")
    page.fill("#f-key_0", "city")
    page.select_option("#f-op_0", "=")
    page.fill("#f-value_0", "Paris")
    page.locator("button[value=count]").click()
    page.locator("#count strong").wait_for()
    assert page.locator("#count strong").inner_text() == "2"  # Ann and Rae (Bob was refused)
    look(page, shots, "07-segment")
    page.locator(".actions button[value=save]").click()
    page.wait_for_url(re.compile(r".*/admin/segments/\d+$"))
    return page.url.rsplit("/", 1)[1]


def _campaign(page, base: str, shots: Path, segment_id: str, smtp: _Server) -> str:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/admin/segments/{segment_id}")
    page.click("text=New campaign")
    assert page.locator("#f-segment_id").input_value() == segment_id
    page.fill("#f-subject", "Spring news for {{ first_name }}")
    page.fill("#f-body", "# Spring\n\nHello {{ first_name }}, the fair starts on **Monday**.")
    page.check("input[name=topics][value=news]")
    page.keyboard.press("Control+s")
    page.wait_for_url(re.compile(r".*/admin/campaigns/\d+$"))
    campaign_id = page.url.rsplit("/", 1)[1]
    frame = page.frame_locator("iframe[name=preview]")
    page.fill("#preview-as", "ann@example.org")
    page.click("form[data-preview] button[type=submit]")
    frame.locator("text=Hello Ann").wait_for()
    look(page, shots, "08-editor-preview")

    page.fill("#f-addresses", "me@example.org")
    page.click("#test-send button[type=submit]")
    assert "Test sent to me@example.org." in page.locator("[role=status]").inner_text()
    assert any(rcpts == ["me@example.org"] and b"[TEST]" in data for rcpts, data in smtp.received)
    return campaign_id


def _schedule_and_watch(page, base: str, shots: Path, campaign_id: str) -> None:  # type: ignore[no-untyped-def]
    page.click("button[name=then][value=review]")  # saves, then the review page
    page.wait_for_url(f"{base}/admin/campaigns/{campaign_id}/review")
    page.locator("#preflight ul.checklist").wait_for(timeout=90_000)
    assert "<strong>2</strong>" in page.content()  # recipients: the segment within the topic
    look(page, shots, "09-review")
    soon = datetime.now(UTC) + timedelta(seconds=8)  # the marketer's zone is UTC
    page.fill("#f-send_at", f"{soon:%Y-%m-%dT%H:%M:%S}")
    page.click("form[action$='/review'] button[type=submit]")
    page.wait_for_url(f"{base}/admin/campaigns/{campaign_id}/progress")
    assert "Scheduled for" in page.locator(".flash").inner_text()
    look(page, shots, "10-progress-scheduled")
    # htmx polls the live block; the status line announces the change, polling then stops.
    page.locator("#campaign-state", has_text="now done").wait_for(timeout=90_000)
    assert page.locator("#live[hx-trigger]").count() == 0
    figures = page.locator("dl.figures").inner_text()
    assert re.search(r"Sent\s+1", figures), figures
    assert re.search(r"Failed\s+1", figures), figures
    look(page, shots, "11-progress-done")


def test_the_marketer_journey(browser, smtp_server, live_server, screenshot_dir) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(30_000)
    base = live_server
    try:
        _first_admin(page, base, screenshot_dir)
        _topic_and_import(page, base, screenshot_dir)
        segment_id = _segment(page, base, screenshot_dir)
        campaign_id = _campaign(page, base, screenshot_dir, segment_id, smtp_server)
        _schedule_and_watch(page, base, screenshot_dir, campaign_id)

        page.click("text=Recipients not reached")
        page.wait_for_url(f"{base}/admin/campaigns/{campaign_id}/sends")
        row = page.locator("table tbody tr", has_text=REFUSED).inner_text()
        assert REFUSAL in row, row
        look(page, screenshot_dir, "12-failures")
        assert [rcpts for rcpts, data in smtp_server.received if b"[TEST]" not in data] == [
            ["ann@example.org"]
        ]
        page.goto(f"{base}/admin/campaigns")
        look(page, screenshot_dir, "13-campaigns")
    finally:
        context.close()
