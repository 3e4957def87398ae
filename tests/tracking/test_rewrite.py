"""The tracked copy of a message: which links are rewritten, the pixel, and nothing at all
for someone who did not allow tracking (tested on the rendered message, both parts)."""

from __future__ import annotations

import email
import re
from dataclasses import replace
from email import policy
from html import unescape

import pytest

from app.errors import TokenInvalid
from app.links import read_click, read_open_token
from app.models import Campaign
from app.models.enums import Category
from app.sending.render import Recipient, prepare_campaign, render_message
from app.settings import Settings

BODY = """<p>Read <a href="https://shop.example.com/sale?a=1&amp;b=2">the sale</a>,
<a href="mailto:hello@example.com">write to us</a>, <a href="tel:+331234">call</a>,
<a href="#top">top</a>, <a data-notrack href="https://private.example.net/x">private</a>,
<a href="https://example.org/u?id={{ attributes.pid }}">your page</a>,
<a href="{{ preferences_url }}">preferences</a>.</p>
<p>Also https://blog.example.com/post.</p>
"""
SALE = "https://shop.example.com/sale?a=1&b=2"
BLOG = "https://blog.example.com/post"


def campaign(**overrides: object) -> Campaign:
    values: dict[str, object] = {
        "id": 7,
        "name": "November",
        "subject": "News",
        "body": BODY,
        "body_format": "html",
        "category": Category.MARKETING,
    }
    values.update(overrides)
    return Campaign(**values)


ANN = Recipient(
    id=42,
    email="ann@example.com",
    name="Ann",
    attributes={"pid": 9},
    link_secret="a1" * 16,
    tracking=True,
)


def parts(data: bytes) -> tuple[str, str]:
    message = email.message_from_bytes(data, policy=policy.default)
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


def hrefs(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="([^"]*)"', html)]


def test_tracked_copy_rewrites_plain_links_and_adds_the_pixel(render_settings: Settings) -> None:
    prepared = prepare_campaign(campaign(), settings=render_settings)
    text, html = parts(render_message(prepared, ANN, settings=render_settings).data)
    base = "https://news.example.org"
    tracked = [h for h in hrefs(html) if h.startswith(f"{base}/r/")]
    assert len(tracked) == 1
    message_token, link = tracked[0].removeprefix(f"{base}/r/").split("/")
    ref, url = read_click(message_token, link, render_settings)
    assert (ref.who.subscriber_id, ref.campaign_id, url) == (42, 7, SALE)
    for untouched in (
        "mailto:hello@example.com",
        "tel:+331234",
        "#top",
        "https://private.example.net/x",
        "https://example.org/u?id=9",
    ):
        assert untouched in hrefs(html)
    assert any(h.startswith(f"{base}/preferences/") for h in hrefs(html))
    pixel = re.findall(rf'<img src="{base}/o/([^"]+)"', html)
    assert len(pixel) == 1
    assert pixel[0] == message_token
    assert read_open_token(pixel[0], render_settings).who.subscriber_id == 42
    # text part: the bare URL and the sale link are tracked, the marked one is not
    assert BLOG not in text
    assert SALE not in text
    assert "https://private.example.net/x" in text
    assert text.count(f"{base}/r/") == 2


@pytest.mark.parametrize("who", ["said no", "campaign off"])
def test_nobody_untracked_gets_a_pixel_or_a_rewritten_link(
    render_settings: Settings, who: str
) -> None:
    if who == "said no":
        prepared = prepare_campaign(campaign(), settings=render_settings)
        recipient = replace(ANN, tracking=False)
    else:
        prepared = prepare_campaign(
            campaign(track_opens=False, track_clicks=False), settings=render_settings
        )
        recipient = ANN
    data = render_message(prepared, recipient, settings=render_settings).data
    text, html = parts(data)
    assert b"/r/" not in data
    assert b"/o/" not in data
    assert "<img" not in html
    assert SALE in hrefs(html)
    assert BLOG in text


def test_campaign_switches_apart(render_settings: Settings) -> None:
    opens_only = prepare_campaign(campaign(track_clicks=False), settings=render_settings)
    _text, html = parts(render_message(opens_only, ANN, settings=render_settings).data)
    assert SALE in hrefs(html)
    assert "/o/" in html
    clicks_only = prepare_campaign(campaign(track_opens=False), settings=render_settings)
    _text, html = parts(render_message(clicks_only, ANN, settings=render_settings).data)
    assert SALE not in hrefs(html)
    assert "/o/" not in html


def test_a_link_of_another_campaign_or_a_changed_target_is_refused(
    render_settings: Settings,
) -> None:
    seven = prepare_campaign(campaign(), settings=render_settings)
    eight = prepare_campaign(campaign(id=8), settings=render_settings)

    def click(prepared):
        _t, html = parts(render_message(prepared, ANN, settings=render_settings).data)
        return next(h for h in hrefs(html) if "/r/" in h).rsplit("/", 2)[-2:]

    (msg7, link7), (_msg8, link8) = click(seven), click(eight)
    with pytest.raises(TokenInvalid):
        read_click(msg7, link8, render_settings)  # campaign 8's link with 7's message
    with pytest.raises(TokenInvalid):
        read_click(msg7, link7[:-3] + "AAA", render_settings)
    with pytest.raises(TokenInvalid):
        read_click(msg7, "WyI3IiwiaHR0cHM6Ly9ldmlsLmV4YW1wbGUvIl0", render_settings)


def test_marketers_cannot_use_the_tracking_token_themselves(render_settings: Settings) -> None:
    from app.errors import InvalidInput

    with pytest.raises(InvalidInput):
        prepare_campaign(
            campaign(body="<p>{{ tracking_token }}</p>" + BODY), settings=render_settings
        )
