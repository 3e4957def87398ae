"""Classification on the fixtures and on small hand-made messages, without any server."""

from __future__ import annotations

import itertools
import random
from email.utils import parseaddr

import pytest

from app.inbound.classify import Context, Kind, address_of, classify
from app.inbound.identity import build_context, campaign_message_id, parse_campaign_message_id
from app.inbound.phrases import find_optout
from app.inbound.text import sanitize, written_part
from app.link_secrets import link_tag
from app.links import unsubscribe_token
from app.settings import get_settings
from tests.support.inbound import load_fixture
from tests.support.inbound_cases import CASES

SAM, TINA, CAMPAIGN = 17, 23, 5
SECRET = "5e" * 16


@pytest.fixture
def ctx(env: dict[str, str]) -> Context:
    return build_context(get_settings())


def _values() -> dict[str, str]:
    settings = get_settings()
    return {
        "{{TOKEN_SAM}}": unsubscribe_token(SAM, CAMPAIGN, secret=SECRET),
        "{{TOKEN_TINA}}": unsubscribe_token(TINA, 0, secret=SECRET),
        "{{OWN_MSGID}}": campaign_message_id(settings, CAMPAIGN, 99, SECRET),
        "{{MSGID_HECTOR}}": campaign_message_id(settings, CAMPAIGN, 12, SECRET),
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_fixture_verdict(case, ctx: Context) -> None:
    verdict = classify(load_fixture(case.name, _values()), ctx)
    assert verdict.kind == case.kind, verdict.reason
    assert verdict.folder == case.folder
    assert verdict.reason
    if case.kind not in {"other", "unreadable"}:
        assert verdict.evidence.get("rule")


def test_bounces_name_the_failed_recipient(ctx: Context) -> None:
    verdict = classify(load_fixture("dsn_postfix_hard"), ctx)
    assert verdict.recipients == ["mia@example.com"]
    assert verdict.evidence["recipients"][0]["status"] == "5.1.1"
    assert "unsubscribe" not in str(verdict.evidence.get("matched", ""))


def test_token_carries_subscriber_and_campaign(ctx: Context) -> None:
    subject = classify(load_fixture("mailto_subject_token", _values()), ctx)
    tag = link_tag(SECRET)
    assert (subject.subscriber_id, subject.campaign_id, subject.link_tag) == (SAM, CAMPAIGN, tag)
    plus = classify(load_fixture("mailto_plus_token", _values()), ctx)
    assert (plus.subscriber_id, plus.campaign_id, plus.link_tag) == (TINA, 0, tag)


def test_forged_token_is_not_a_token(ctx: Context) -> None:
    forged = load_fixture("mailto_subject_token", {"{{TOKEN_SAM}}": "WzE3LDVd.forgedsignature"})
    assert classify(forged, ctx).kind == Kind.PERSON_OPTOUT  # the word alone, from the sender


def test_bounce_of_our_campaign_names_the_subscriber(ctx: Context) -> None:
    settings = get_settings()
    msgid = campaign_message_id(settings, CAMPAIGN, 4242, SECRET)
    assert parse_campaign_message_id(settings, msgid) == (CAMPAIGN, 4242)
    assert parse_campaign_message_id(settings, msgid.replace("s4242", "s4243")) is None
    tag = link_tag(SECRET)
    assert parse_campaign_message_id(settings, msgid.replace(tag, link_tag("x"))) is None
    raw = load_fixture("dsn_postfix_hard").replace(
        b"<20261102090000.octomail.42.17@news.example.org>", msgid.encode()
    )
    assert [(t.how, t.campaign_id, t.subscriber_id) for t in classify(raw, ctx).ties] == [
        ("message-id", CAMPAIGN, 4242)
    ]


def test_too_large_goes_to_review_with_reason(env: dict[str, str]) -> None:
    ctx = Context(max_bytes=1000)
    raw = load_fixture("plain_request_en") + b"x" * 2000
    verdict = classify(raw, ctx)
    assert verdict.kind == Kind.UNREADABLE
    assert "too large" in verdict.reason
    assert verdict.from_addr == "carol@example.com"


@pytest.mark.parametrize(
    "text",
    [
        "Please unsubscribe me",
        "remove me from your list please",
        "Take me off this list",
        "opt-out",
        "STOP",
        "stop.",
        "Merci de me désabonner",
        "Je veux me désinscrire",
        "Pouvez-vous me retirer de la liste ?",
        "Bitte abmelden",
        "Bitte austragen!",
        "Ich möchte den Newsletter abbestellen",
        "Quiero darme de baja",
        "Por favor dar de baja este correo",
        "Cancelar suscripción",
    ],
)
def test_optout_wording(text: str) -> None:
    assert find_optout(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "I can't stop reading your newsletter!",
        "Great issue, thanks",
        "Where do I sign up?",
        "Can you remove the typo in the last issue?",
        "Bitte schicken Sie mir die Rechnung",
        "Merci pour cette lettre",
        "Muchas gracias por la información",
    ],
)
def test_not_optout_wording(text: str) -> None:
    assert find_optout(text) is None


@pytest.mark.parametrize(
    "body",
    [
        "Thanks!\n\nOn Mon, 2 Nov 2026 at 10:00, Octomail <news@example.org> wrote:\n> unsubscribe",
        "Thanks!\n\nOn Mon, 2 Nov 2026 at 10:00, Octomail <news@example.org>\nwrote:\n> unsubscribe",
        "Merci\n\nLe 2 nov. 2026 à 10:00, Octomail <news@example.org> a écrit :\n> désabonner",
        "Danke\n\nAm 02.11.2026 um 10:00 schrieb Octomail:\n> abmelden",
        "Gracias\n\nEl lun, 2 nov 2026 a las 10:00, Octomail (<news@example.org>) escribió:\n> baja",
        "Thanks\n\n-----Original Message-----\nFrom: news@example.org\nUnsubscribe",
        "Danke\n\nVon: Octomail <news@example.org>\nGesendet: Montag, 2. November 2026\nAbmelden",
        "Merci\n\nDe : Octomail <news@example.org>\nEnvoyé : lundi 2 novembre\nSe désabonner",
        "Thanks\n________________________________\nFrom: Octomail\nSent: Monday\nUnsubscribe",
        "Thanks\n\n-- \nJane · unsubscribe from my jokes list: reply STOP",
        "Thanks\n\nBegin forwarded message:\n\nFrom: Octomail\nUnsubscribe",
    ],
)
def test_quotes_signatures_and_forwards_are_not_the_senders_words(body: str) -> None:
    written = written_part(body)
    assert find_optout(written) is None, written


def test_sanitize_recovers_undeclared_8bit_and_drops_nul() -> None:
    assert sanitize("Gr\udcfc\udcdfe\x00") == "Grüße"  # windows-1252 bytes
    assert sanitize("caf\udcc3\udca9") == "café"  # UTF-8 bytes
    assert sanitize("a\ud800b") == "a\ufffdb"


def test_address_shortcut_agrees_with_parseaddr() -> None:
    forms = [
        "a@b.example",
        " Ann <ann@b.example> ",
        '"Doe, John" <j.d+x@b.example>',
        "<a@b>",
        "=?utf-8?q?J=C3=BCrgen?= <j@b.example>",
        "a..b@c",
        "a@b.",
        "x <a@b",
        "a@b, c@d",
        "(c) a@b",
        '"a\\"b" <a@b>',
        "Mu\udcf1oz <m@b.es>",
        "a b c@d",
        "[1.2.3.4]",
        "",
    ]
    alphabet = ["a", "@", ".", "<", ">", " ", '"', ",", "(", "\\", "é"]
    rng = random.Random(5)
    samples = forms + [
        "".join(t) for n in range(6) for t in itertools.product(alphabet[:8], repeat=n)
    ]
    samples += [
        "".join(rng.choice(alphabet + ["user", "b.example"]) for _ in range(9)) for _ in range(5000)
    ]
    for value in samples:
        assert address_of(value) == parseaddr(value)[1], value


def test_written_part_shortcut_agrees_with_the_reply_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.inbound import text

    assert text._SHORTCUT  # the pinned mail-parser-reply pattern is the installed one
    pieces = [
        "Thanks",
        "Please unsubscribe me",
        "On Monday",
        "wrote",
        "Le lundi",
        "a écrit",
        "Am Montag",
        "schrieb",
        "El lunes",
        "escribió",
        "From",
        "Von",
        "De ",
        "Sent",
        "Original Message",
        "----",
        "- item",
        "_" * 31,
        "-_" * 16,
        "> quoted",
        "",
        "Best regards",
        "Sent from my iPhone",
        "  ",
        "\t",
        "x\u2028y",
        "Cheers,",
    ]
    rng = random.Random(9)
    samples = ["\n".join(rng.choice(pieces) for _ in range(rng.randint(0, 8))) for _ in range(3000)]
    fast = [written_part(s) for s in samples]
    monkeypatch.setattr(text, "_SHORTCUT", False)
    assert [written_part(s) for s in samples] == fast
