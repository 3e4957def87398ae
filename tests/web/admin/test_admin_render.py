"""render(): an htmx request gets one block of the page (jinja2-fragments), a normal one the
whole page; the flash message shows once."""

from __future__ import annotations

from starlette.requests import Request

from app.web.admin.render import FLASH_COOKIE, redirect, render, section


def _request(headers: dict[str, str] | None = None, cookie: str = "") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if cookie:
        raw.append((b"cookie", cookie.encode()))
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/admin/x",
            "headers": raw,
            "query_string": b"",
            "server": ("testserver", 80),
            "scheme": "http",
        }
    )


def _page(request: Request):
    context = {"title": "T", "message": "only the block", "inbox_waiting": None}
    return render(request, "admin/error.html", context, block="content")


def test_htmx_requests_get_the_block_alone(env) -> None:
    full = _page(_request()).body.decode()
    assert full.startswith("<!doctype html>")
    assert "only the block" in full
    part = _page(_request({"HX-Request": "true"})).body.decode()
    assert "only the block" in part
    assert "<html" not in part
    assert "<nav" not in part
    boosted = _page(_request({"HX-Request": "true", "HX-Boosted": "true"})).body.decode()
    assert boosted.startswith("<!doctype html>")  # a boosted link navigates: the whole page


def test_a_flash_message_is_shown_once(env) -> None:
    cookie = redirect("/admin/", "Saved.").headers["set-cookie"]
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    response = _page(_request(cookie=f"{FLASH_COOKIE}={value}"))
    assert '<p class="flash">Saved.</p>' in response.body.decode()
    assert f'{FLASH_COOKIE}=""' in response.headers["set-cookie"]  # deleted: shown once
    forged = _page(_request(cookie=f"{FLASH_COOKIE}=Hacked.x.y"))
    assert "Hacked" not in forged.body.decode()


def test_the_nav_section_of_a_path() -> None:
    assert section("/admin/") == "dashboard"
    assert section("/admin/users/3") == "admin"
    assert section("/admin/tokens") == "admin"
    assert section("/admin/campaigns/4/review") == "campaigns"
