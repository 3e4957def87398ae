"""/admin/outbox: the embedded mail catcher's Maildir, newest first, paged; one message with
its headers, text, and HTML in a frame served under a strict policy; only by Maildir key;
a 404 page saying it is off when an SMTP server is configured."""

from __future__ import annotations

import pytest

from app.models import Role
from app.sending.catcher import MaildirHandler, outbox_path
from app.settings import get_settings

# Pages and forms over the domain functions, which their own tests run on both
# databases (tests/conftest.py, `one_database`).
pytestmark = pytest.mark.one_database

NEWSLETTER = (
    "From: News <news@example.org>\r\nTo: ann@example.org\r\nSubject: {subject}\r\n"
    "Date: Mon, 30 Nov 2026 06:00:00 +0000\r\nMessage-ID: <{n}@example.org>\r\n"
    "List-Unsubscribe: <http://testserver/u/tok>\r\nMIME-Version: 1.0\r\n"
    'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
    "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello Ann, <plain> text\r\n"
    "--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    '<h1>Hello Ann</h1><img src="https://tracker.example/p.gif"><script>alert(1)</script>\r\n'
    "--b--\r\n"
)


@pytest.fixture
def embedded(settings_env, monkeypatch) -> MaildirHandler:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OCTOMAIL_SMTP_URLS", "")
    get_settings.cache_clear()
    return MaildirHandler(outbox_path(get_settings()))


def _store(handler: MaildirHandler, n: int) -> str:
    data = NEWSLETTER.format(subject=f"Issue {n}", n=n).encode()
    return handler.store("bounces@example.org", "ann@example.org", data)


def test_off_when_an_smtp_server_is_configured(sign_in_as) -> None:
    viewer = sign_in_as(Role.VIEWER)
    page = viewer.client.get("/admin/outbox")
    assert page.status_code == 404
    assert "OCTOMAIL_SMTP_URLS" in page.text
    assert 'href="/admin/outbox"' not in viewer.client.get("/admin/").text  # no nav entry


def test_newest_first_and_paged(embedded, sign_in_as, monkeypatch) -> None:
    from app.web.admin import outbox as pages

    monkeypatch.setattr(pages, "PAGE", 2)
    keys = [_store(embedded, n) for n in range(3)]
    viewer = sign_in_as(Role.VIEWER)
    empty_first = viewer.client.get("/admin/outbox")
    assert empty_first.status_code == 200
    text = empty_first.text
    assert text.index("Issue 2") < text.index("Issue 1")
    assert "Issue 0" not in text
    assert f"/admin/outbox?after={keys[1]}" in text
    second = viewer.client.get(f"/admin/outbox?after={keys[1]}")
    assert "Issue 0" in second.text
    assert "Issue 2" not in second.text


def test_one_message_text_headers_and_a_locked_down_frame(embedded, sign_in_as) -> None:
    key = _store(embedded, 7)
    viewer = sign_in_as(Role.VIEWER)
    page = viewer.client.get(f"/admin/outbox/{key}")
    assert page.status_code == 200
    assert "Issue 7" in page.text
    assert "&lt;http://testserver/u/tok&gt;" in page.text
    assert "Hello Ann, &lt;plain&gt; text" in page.text
    assert f'src="/admin/outbox/{key}/html" sandbox=""' in page.text
    assert "frame-src 'self'" in page.headers["content-security-policy"]
    frame = viewer.client.get(f"/admin/outbox/{key}/html")
    assert "<h1>Hello Ann</h1>" in frame.text
    policy = frame.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "img-src data:" in policy
    assert "sandbox" in policy
    assert "script-src" not in policy
    assert "https:" not in policy
    assert frame.headers["x-frame-options"] == "SAMEORIGIN"


@pytest.mark.parametrize("key", ["..%2F..%2Fsecrets", "nope", ".hidden", "a%00b", "x" * 300])
def test_only_maildir_keys_are_served(embedded, sign_in_as, key) -> None:
    _store(embedded, 1)
    viewer = sign_in_as(Role.VIEWER)
    assert viewer.client.get(f"/admin/outbox/{key}").status_code == 404
    assert viewer.client.get(f"/admin/outbox/{key}/html").status_code == 404
    assert viewer.client.get(f"/admin/outbox?after={key[:200]}").status_code == 404


def test_one_seconds_mail_keeps_its_delivery_order() -> None:
    """Maildir keys do not zero-pad the microseconds: M99999 came before M123456."""
    from app.sending.outbox import _order

    keys = ["1700000000.M123456P7Q2.host", "1700000001.M5P7Q3.host", "1700000000.M99999P7Q1.host"]
    assert sorted(keys, key=_order, reverse=True) == [keys[1], keys[0], keys[2]]
