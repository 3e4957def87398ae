"""Rendering: headers, footer, personalisation, sandbox, header injection, encodings (pure)."""

from __future__ import annotations

import email
import re
from dataclasses import replace
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

import pytest

from app import links
from app.errors import ConfigurationError, InvalidInput
from app.link_secrets import link_tag
from app.models import Campaign
from app.models.enums import Category
from app.sending.render import (
    Recipient,
    prepare_campaign,
    render_message,
    render_preview,
    render_test,
)
from app.settings import Settings
from app.tokens import Purpose, verify
from app.verp import parse_verp, verp_address

BODY = """# Hello {{ first_name }}!

Your city: **{{ attributes.city }}**. [Your profile](https://example.org/p?id={{ attributes.pid }})

{% if attributes.plan == "pro" %}Thanks for being a pro.{% else %}Upgrade today.{% endif %}

. a line starting with a dot, a = sign, and trailing spaces   
"""


def campaign(**overrides: object) -> Campaign:
    values: dict[str, object] = {
        "id": 7,
        "name": "November",
        "subject": "News for {{ first_name }}",
        "body": BODY,
        "body_format": "markdown",
        "category": Category.MARKETING,
    }
    values.update(overrides)
    return Campaign(**values)


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)


def parse_raw_header(message: EmailMessage, name: str) -> str:
    raw = dict(message.raw_items())[name]
    return re.sub(r"\r?\n[ \t]", " ", raw)


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


ALICE_SECRET = "a1" * 16
ALICE = Recipient(
    id=42,
    email="alice@example.com",
    name="Alice Martin",
    attributes={"city": "Lyon", "plan": "pro", "pid": 9},
    link_secret=ALICE_SECRET,
)


def test_headers_footer_and_links(render_settings: Settings) -> None:
    prepared = prepare_campaign(campaign(), settings=render_settings, topic_names=["Weekly"])
    rendered = render_message(prepared, ALICE, settings=render_settings)
    msg = parse(rendered.data)
    assert not msg.defects

    unsubscribe = links.unsubscribe_url(42, 7, render_settings, secret=ALICE_SECRET)
    preferences = links.preferences_url(42, render_settings, secret=ALICE_SECRET)
    mailto = links.mailto_unsubscribe(42, 7, render_settings, secret=ALICE_SECRET)
    assert unsubscribe.startswith("https://news.example.org/u/")
    values = msg.get_all("List-Unsubscribe")
    assert values is not None
    assert len(values) == 1
    assert re.sub(r"\s+", " ", str(values[0])) == f"<{unsubscribe}>, <{mailto}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Id"] == "Octomail <octomail.example.org>"
    assert str(msg["From"]) == "Octo News <news@example.org>"
    assert str(msg["To"]) == "Alice Martin <alice@example.com>"
    assert msg["Subject"] == "News for Alice"
    assert msg["Date"].datetime.utcoffset().total_seconds() == 0
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert verify(Purpose.UNSUBSCRIBE, unsubscribe.rsplit("/", 1)[1], settings=render_settings) == [
        42,
        7,
        link_tag(ALICE_SECRET),
    ]

    text, html = parts(msg)
    for part in (text, html):
        assert unsubscribe in part
        assert preferences in part
        assert "Octomail Ltd, 1 Test Street, 75001 Paris, France" in part
        assert "you subscribed to Weekly" in part
    assert f'href="{unsubscribe}"' in html
    assert "Hello Alice!" in text
    assert "Thanks for being a pro." in text
    assert "Lyon" in html
    assert "https://example.org/p?id=9" in html
    assert "Upgrade today" not in html
    assert ". a line starting with a dot, a = sign" in text


def test_message_id_is_deterministic(render_settings: Settings) -> None:
    first = render_message(
        prepare_campaign(campaign(), settings=render_settings), ALICE, settings=render_settings
    )
    again = render_message(
        prepare_campaign(campaign(), settings=render_settings), ALICE, settings=render_settings
    )
    other = render_message(
        prepare_campaign(campaign(), settings=render_settings),
        Recipient(id=43, email="bob@example.com"),
        settings=render_settings,
    )
    assert first.message_id == again.message_id == parse(first.data)["Message-ID"]
    tag = link_tag(ALICE_SECRET)
    assert re.fullmatch(rf"<c7\.s42\.{tag}\.[0-9a-f]{{12}}@example\.org>", first.message_id)
    assert other.message_id != first.message_id
    # The same person with a new secret (or a new person with the same id): another id.
    renewed = render_message(
        prepare_campaign(campaign(), settings=render_settings),
        replace(ALICE, link_secret="b2" * 16),
        settings=render_settings,
    )
    assert renewed.message_id != first.message_id
    # The envelope sender is the signed VERP address of this send (its bounces come back to
    # the info mailbox naming campaign 7, subscriber 42), the same on a re-send.
    assert first.envelope_from == again.envelope_from != other.envelope_from
    assert first.envelope_from.startswith("info+b-7-42-")
    assert first.rcpt == "alice@example.com"
    assert parse_verp(render_settings, first.envelope_from) == (7, 42)
    assert parse_verp(render_settings, other.envelope_from) == (7, 43)


def test_verp_address_cannot_be_made_up(render_settings: Settings) -> None:
    address = verp_address(render_settings, 7, 42)
    local, _, domain = address.partition("@")
    tag = local.rsplit("-", 1)[1]
    assert parse_verp(render_settings, address.upper()) == (7, 42)  # MTAs may fold case
    assert parse_verp(render_settings, f"Mail <{address}>") == (7, 42)
    for forged in (
        address.replace("-42-", "-43-"),
        address.replace("b-7-", "b-8-"),
        address.replace(tag, "0" * len(tag)),
        f"info+b-7-42-{tag[:-1]}@{domain}",
        "info@example.org",
        "",
    ):
        assert parse_verp(render_settings, forged) is None, forged
    assert parse_verp(_with_keys(render_settings, "another-key-0123456789"), address) is None
    rotated = _with_keys(render_settings, "new-key-0123456789," + render_settings.secret_keys)
    assert parse_verp(rotated, address) == (7, 42)  # old mail's bounces still verify
    assert verp_address(rotated, 7, 42) != address  # the newest key signs


def _with_keys(settings: Settings, keys: str) -> Settings:
    copy = settings.model_copy(update={"secret_keys": keys})
    copy.__dict__.pop("signing_keys", None)  # a cached_property: model_copy keeps its value
    return copy


def test_envelope_sender_base(render_settings: Settings) -> None:
    bounces = render_settings.model_copy(update={"bounce_address": "bounces@mail.example.org"})
    message = render_message(
        prepare_campaign(campaign(), settings=bounces), ALICE, settings=bounces
    )
    assert re.fullmatch(r"bounces\+b-7-42-[0-9a-f]{16}@mail\.example\.org", message.envelope_from)
    plain = render_settings.model_copy(update={"unsubscribe_mailto": ""})
    message = render_message(prepare_campaign(campaign(), settings=plain), ALICE, settings=plain)
    assert message.envelope_from == "news@example.org"  # no mailbox reads bounces: no VERP


def test_wire_format(render_settings: Settings) -> None:
    long_name = "Zoë " * 40
    data = render_message(
        prepare_campaign(campaign(), settings=render_settings),
        Recipient(id=1, email="z@example.com", name=long_name, attributes={"city": "x" * 3000}),
        settings=render_settings,
    ).data
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    text, html = parts(parse(data))
    assert "x" * 3000 in html


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "=?utf-8?q?not_an_encoded_word?=",
        ".leading dot",
        "trailing   ",
        "a=b=c",
        "Ünïcödé ✓ 漢字 🐙",
        "line one\nline two\r\nline three",
        "x" * 200 + "é" * 50,
    ],
)
def test_personal_values_round_trip(render_settings: Settings, value: str) -> None:
    prepared = prepare_campaign(
        campaign(body="[{{ attributes.v }}]", body_format="html", subject="S: {{ attributes.v }}"),
        settings=render_settings,
    )
    msg = parse(
        render_message(
            prepared,
            Recipient(id=1, email="v@example.com", name=value, attributes={"v": value}),
            settings=render_settings,
        ).data
    )
    assert not msg.defects
    text, _html = parts(msg)
    assert (
        f"[{value.replace(chr(13) + chr(10), chr(10))}]".rstrip() in text.replace("\r\n", "\n")
        or value.strip() in text
    )
    shown = " ".join(value.split())
    assert msg["Subject"] == f"S: {shown}"
    # RFC 2047 decoding (email.header) restores the name exactly; policy.default's address
    # parser keeps the folding space between adjacent encoded words, so compare that one
    # without spaces for names long enough to need several words.
    raw_to = parse_raw_header(msg, "To")
    assert (
        str(make_header(decode_header(raw_to.rsplit(" <", 1)[0]))).strip('"') == shown
        or shown.isascii()
    )
    display = msg["To"].addresses[0].display_name
    assert display == shown or display.replace(" ", "") == shown.replace(" ", "")
    assert msg["To"].addresses[0].addr_spec == "v@example.com"


@pytest.mark.parametrize(
    "evil",
    [
        "Eve\r\nBcc: victim@example.net",
        "Eve\nBcc: victim@example.net",
        "Eve\rBcc: victim@example.net",
        "Eve\u2028Bcc: victim@example.net",
        'Eve" <evil@example.net>, "x',
        "Eve\x00\x0bBcc: victim@example.net",
    ],
)
def test_names_and_subjects_cannot_inject_headers(render_settings: Settings, evil: str) -> None:
    prepared = prepare_campaign(campaign(subject="Hi {{ name }}"), settings=render_settings)
    msg = parse(
        render_message(
            prepared, Recipient(id=5, email="eve@example.com", name=evil), settings=render_settings
        ).data
    )
    assert msg["Bcc"] is None
    assert [a.addr_spec for a in msg["To"].addresses] == ["eve@example.com"]
    assert "\n" not in msg["Subject"]
    assert "\r" not in msg["Subject"]
    # a campaign subject with a line break is flattened too
    prepared = prepare_campaign(
        campaign(subject="Hi\r\nBcc: victim@example.net"), settings=render_settings
    )
    msg = parse(render_message(prepared, ALICE, settings=render_settings).data)
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Hi Bcc: victim@example.net"


@pytest.mark.parametrize(
    "address",
    [
        "a@b.example\r\nBcc: x@y.example",
        "<a@b.example>",
        "a b@example.com",
        "no-at-sign",
        "jö\u2028rg@example.com",
    ],
)
def test_undeliverable_addresses_are_refused(render_settings: Settings, address: str) -> None:
    prepared = prepare_campaign(campaign(), settings=render_settings)
    with pytest.raises(InvalidInput):
        render_message(prepared, Recipient(id=1, email=address), settings=render_settings)


def test_idn_domain_is_punycoded(render_settings: Settings) -> None:
    prepared = prepare_campaign(campaign(), settings=render_settings)
    rendered = render_message(
        prepared, Recipient(id=1, email="anna@bücher.example"), settings=render_settings
    )
    assert rendered.rcpt == "anna@xn--bcher-kva.example"


def test_a_non_ascii_local_part_is_rendered_for_smtputf8(render_settings: Settings) -> None:
    """RFC 6531/6532: the envelope keeps the UTF-8 local part (the transport adds SMTPUTF8),
    the To header carries the address in UTF-8, the domain as a person reads it."""
    prepared = prepare_campaign(campaign(), settings=render_settings)
    rendered = render_message(
        prepared,
        Recipient(id=1, email="jörg@bücher.example", name="Jörg"),
        settings=render_settings,
    )
    assert rendered.rcpt == "jörg@xn--bcher-kva.example"
    assert "To: =?utf-8?b?SsO2cmc=?= <jörg@bücher.example>\r\n".encode() in rendered.data


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ ''|attr('__class__') }}",
        "{{ attributes['__class__'] }}",
        "{% include 'default.html' %}",
        "{% import 'default.html' as x %}",
        "{{ unclosed",
        "{{ 1 / 0 }}",
        "{% for x in 5 %}{% endfor %}",
    ],
)
def test_sandbox_refuses_hostile_templates(render_settings: Settings, template: str) -> None:
    with pytest.raises(InvalidInput):
        prepare_campaign(campaign(body=template, body_format="html"), settings=render_settings)
    with pytest.raises(InvalidInput):
        prepare_campaign(campaign(subject=template), settings=render_settings)


def test_sandbox_blocks_mutation_and_escapes_html(render_settings: Settings) -> None:
    with pytest.raises(InvalidInput):
        prepare_campaign(
            campaign(body="{{ attributes.update({'a': 1}) }}", body_format="html"),
            settings=render_settings,
        )
    prepared = prepare_campaign(
        campaign(body="<p>{{ name }}</p>", body_format="html"), settings=render_settings
    )
    evil = Recipient(id=3, email="x@example.com", name="<script>alert(1)</script>")
    _text, html = parts(parse(render_message(prepared, evil, settings=render_settings).data))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_css_is_inlined_and_media_queries_kept(render_settings: Settings) -> None:
    body = (
        "<style>.cta { color: #ff0000; }</style><table>{% for item in attributes.products %}"
        '<tr><td class="cta">{{ item }}</td></tr>{% endfor %}</table>'
    )
    prepared = prepare_campaign(campaign(body=body, body_format="html"), settings=render_settings)
    html = render_preview(
        prepared,
        Recipient(id=1, email="a@example.com", attributes={"products": ["one", "two"]}),
        settings=render_settings,
    ).html
    assert re.search(r'<td class="cta" style="[^"]*color: ?#ff0000', html)
    assert 'class="content" style="' in html
    assert "@media only screen and (max-width: 620px)" in html
    assert html.index("one") < html.index("two")
    assert html.count("<tr><td") >= 2


def test_marketing_needs_postal_address(render_settings: Settings) -> None:
    no_address = render_settings.model_copy(update={"postal_address": ""})
    with pytest.raises(ConfigurationError, match="OCTOMAIL_POSTAL_ADDRESS"):
        prepare_campaign(campaign(), settings=no_address)
    notice = prepare_campaign(campaign(category=Category.TRANSACTIONAL), settings=no_address)
    msg = parse(render_message(notice, ALICE, settings=no_address).data)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, _html = parts(msg)
    assert "you subscribed to" not in text


def test_no_mailto_when_unset(render_settings: Settings) -> None:
    settings = render_settings.model_copy(update={"unsubscribe_mailto": ""})
    msg = parse(
        render_message(
            prepare_campaign(campaign(), settings=settings), ALICE, settings=settings
        ).data
    )
    assert (
        str(msg["List-Unsubscribe"])
        == f"<{links.unsubscribe_url(42, 7, settings, secret=ALICE_SECRET)}>"
    )


def test_test_send_and_preview(render_settings: Settings) -> None:
    prepared = prepare_campaign(campaign(), settings=render_settings)
    test = render_test(prepared, "qa@example.net", settings=render_settings, recipient=ALICE)
    msg = parse(test.data)
    assert msg["Subject"] == "[TEST] News for Alice"
    assert test.rcpt == "qa@example.net"
    assert "qa@example.net" in str(msg["To"])
    assert test.message_id != render_message(prepared, ALICE, settings=render_settings).message_id
    anonymous = parse(render_test(prepared, "qa@example.net", settings=render_settings).data)
    assert anonymous["Subject"] == "[TEST] News for"
    shown = render_preview(prepared, ALICE, settings=render_settings)
    assert shown.subject == "News for Alice"
    assert "Hello Alice!" in shown.text
    assert "<h1" in shown.html


def test_unknown_layout_and_from(render_settings: Settings) -> None:
    with pytest.raises(InvalidInput):
        prepare_campaign(campaign(layout="../../etc/passwd"), settings=render_settings)
    with pytest.raises(InvalidInput):
        prepare_campaign(campaign(layout="nope"), settings=render_settings)
    with pytest.raises(ConfigurationError):
        prepare_campaign(campaign(from_addr="not an address\r\n"), settings=render_settings)
    custom = prepare_campaign(
        campaign(from_addr="Ünïcode Team <team@example.net>", reply_to="replies@example.net"),
        settings=render_settings,
    )
    msg = parse(render_message(custom, ALICE, settings=render_settings).data)
    assert msg["From"].addresses[0].display_name == "Ünïcode Team"
    assert msg["Reply-To"] == "replies@example.net"
    assert msg["List-Id"] == "Octomail <octomail.example.net>"


@pytest.mark.parametrize("field", ["body", "subject"])
def test_a_lone_surrogate_is_refused_not_crashed_on(render_settings: Settings, field: str) -> None:
    # css-inline and the encoders need real text; a row from a lax client must not crash a send.
    with pytest.raises(InvalidInput, match="lone surrogate"):
        prepare_campaign(campaign(**{field: "Hi \ud800"}), settings=render_settings)


def test_the_footer_follows_the_recipients_language_and_nothing_else_does(
    render_settings: Settings, tmp_path: Path
) -> None:
    """A deployer's layout gets the footer's words too; the marketer's text and the links
    are the same in every language; an unknown stored language reads as English."""
    layouts = tmp_path / "layouts"
    layouts.mkdir()
    (layouts / "own.html").write_text(
        "<div>{{ content }}<p>{{ footer.reason }}</p>"
        "<a href='{{ unsubscribe_url }}'>{{ footer.unsubscribe }}</a> {{ postal_address }}</div>"
    )
    settings = render_settings.model_copy(update={"email_layout_dir": str(layouts)})
    prepared = prepare_campaign(
        campaign(layout="own"), settings=settings, topic_names=["Weekly", "Offers"]
    )
    shown = {
        lang: parts(
            parse(render_message(prepared, replace(ALICE, language=lang), settings=settings).data)
        )
        for lang in ("de", "es", "xx", None)
    }
    assert (
        "Sie erhalten diese E-Mail, weil Sie Weekly, Offers von Octomail abonniert haben."
        in (shown["de"][1])
    )
    assert ">Abbestellen</a>" in shown["de"][1]
    assert ">Darse de baja</a>" in shown["es"][1]
    english = "You receive this email because you subscribed to Weekly, Offers from Octomail."
    assert english in shown["xx"][1]
    assert english in shown[None][1]
    unsubscribe = links.unsubscribe_url(42, 7, settings, secret=ALICE_SECRET)
    for text, html in shown.values():
        assert "Hello Alice!" in text
        assert "Thanks for being a pro." in html
        assert f'href="{unsubscribe}"' in html
        assert unsubscribe in text
    assert shown["xx"] == shown[None]


def test_the_footer_words_are_not_for_subjects(render_settings: Settings) -> None:
    with pytest.raises(InvalidInput, match="unknown template variable footer"):
        prepare_campaign(campaign(subject="{{ footer.unsubscribe }}"), settings=render_settings)
