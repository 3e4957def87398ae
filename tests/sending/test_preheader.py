"""The preheader: hidden preview text first in the HTML body, personalised like the
subject, nothing when empty, the plain-text part unchanged, in every layout (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import InvalidInput
from app.sending.render import prepare_campaign, render_message
from app.settings import Settings
from tests.sending.test_render import ALICE, campaign, parse, parts

HIDDEN = "display:none;"


def rendered(settings: Settings, **overrides: object) -> tuple[str, str]:
    prepared = prepare_campaign(campaign(**overrides), settings=settings)
    return parts(parse(render_message(prepared, ALICE, settings=settings).data))


def test_the_preheader_comes_first_hidden_and_personalised(render_settings: Settings) -> None:
    text, html = rendered(render_settings, preheader="Inside: {{ first_name }}'s <picks> & more")
    shown = "Inside: Alice&#39;s &lt;picks&gt; &amp; more"
    assert shown in html  # personalised, and escaped like every value in the HTML part
    body = html.split("<body", 1)[1]
    start = body.index(shown)
    assert start < body.index("Hello Alice!")  # before the body content...
    assert start < body.index("Octomail")  # ...and before the layout's own header
    div = body[:start].rsplit("<div", 1)[1]
    for rule in (HIDDEN, "max-height:0;", "overflow:hidden;", "mso-hide:all;"):
        assert rule in div
    # The padding keeps clients from pulling the body text into the preview.
    assert body[start + len(shown) :].startswith("&zwnj;&nbsp;" * 20)
    assert "Inside" not in text  # the plain-text part is left alone
    assert text == rendered(render_settings)[0]


def test_an_empty_preheader_adds_nothing(render_settings: Settings) -> None:
    text, html = rendered(render_settings, preheader="")
    assert HIDDEN not in html
    assert "mso-hide" not in html
    assert (text, html) == rendered(render_settings, preheader="   ")


def test_a_custom_layout_gets_it_without_a_change(
    render_settings: Settings, tmp_path: Path
) -> None:
    layouts = tmp_path / "layouts"
    layouts.mkdir()
    (layouts / "plain.html").write_text(
        '<html><body class="x"><p>Head</p>{{ content }}'
        "<p><a href='{{ unsubscribe_url }}'>Unsubscribe</a> {{ postal_address }}</p>"
        "</body></html>"
    )
    (layouts / "bare.html").write_text(
        "<div>{{ content }}<a href='{{ unsubscribe_url }}'>Unsubscribe</a>"
        " {{ postal_address }}</div>"
    )
    settings = render_settings.model_copy(update={"email_layout_dir": str(layouts)})
    for layout in ("plain", "bare"):
        _text, html = rendered(settings, layout=layout, preheader="Hi {{ first_name }}")
        body = html.split("<body", 1)[1]
        assert body.index("Hi Alice") < body.index("Hello Alice!")
        assert HIDDEN in body.split("Hi Alice", 1)[0]


@pytest.mark.parametrize(
    ("preheader", "words"),
    [
        ("Hi {{ frist_name }}", "preheader: unknown template variable frist_name"),
        ("{{ ''.__class__ }}", "preheader"),
        ("Hi {% if %}", "preheader: template error"),
    ],
)
def test_a_bad_preheader_template_is_a_clear_error(
    render_settings: Settings, preheader: str, words: str
) -> None:
    with pytest.raises(InvalidInput, match=words.replace(".", r"\.")):
        prepare_campaign(campaign(preheader=preheader), settings=render_settings)


def test_a_preheader_that_fails_at_run_time_is_one_clear_error(
    render_settings: Settings,
) -> None:
    with pytest.raises(InvalidInput, match="cannot be rendered"):
        prepare_campaign(campaign(preheader="{{ 1 / 0 }}"), settings=render_settings)
