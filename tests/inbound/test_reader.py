"""The free-text reader does what the person meant: negated requests, wording in the sender's
own signature or disclaimer, and requests about another address (classification only; the
effects through the real poller are in test_reader_effects.py)."""

from __future__ import annotations

import pytest

from app.inbound.classify import Context, Kind, classify
from app.inbound.identity import build_context
from app.settings import get_settings


@pytest.fixture
def ctx(env: dict[str, str]) -> Context:
    return build_context(get_settings())


def mail(
    body: str, subject: str = "Newsletter", sender: str = "carol@example.com", extra: str = ""
) -> bytes:
    return (
        f"From: Someone <{sender}>\r\nTo: info@example.org\r\nSubject: {subject}\r\n"
        f"Date: Tue, 3 Nov 2026 09:13:58 +0100\r\nMessage-ID: <reader-{abs(hash(body))}"
        f"@mail.example.com>\r\nMIME-Version: 1.0\r\n{extra}"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}\r\n"
    ).encode()


NEGATED = [
    "Hello,\n\nplease do NOT unsubscribe me, just change my name to Carol Smith-Jones.\n\nCarol",
    "I don't want to unsubscribe, I only moved: my new name is Carol Smith.",
    "Please don't remove me from the list! I still read every issue.",
    "Please do not under any circumstances unsubscribe me, I love it.",
    "Bonjour,\nne me désabonnez pas s'il vous plaît, changez seulement mon prénom.",
    "Je ne veux pas me désinscrire, je voulais juste corriger mon nom.",
    "Hallo, bitte nicht abmelden! Nur mein Name hat sich geändert.",
    "Ich möchte mich nicht abmelden, ich habe nur eine Frage.",
    "Hola, no me den de baja por favor, solo cambien mi nombre.",
    "No quiero darme de baja, solo actualizar mis datos.",
    "No quiero que me den de baja.",
    "There is no need to unsubscribe me, I only changed jobs.",
]


@pytest.mark.parametrize("body", NEGATED)
def test_negated_request_goes_to_a_person(body: str, ctx: Context) -> None:
    verdict = classify(mail(body), ctx)
    assert verdict.kind is Kind.OTHER, verdict.reason
    assert verdict.folder == "Review"
    assert verdict.evidence["rule"] == "negated"
    assert verdict.evidence["negated"]


def test_negated_subject_goes_to_a_person(ctx: Context) -> None:
    verdict = classify(
        mail("My name changed, please update it.", subject="Do not unsubscribe"), ctx
    )
    assert verdict.kind is Kind.OTHER, verdict.reason
    assert verdict.folder == "Review", verdict.reason


@pytest.mark.parametrize(
    "body",
    [
        "I no longer want these, please unsubscribe me.",
        "I don't read it anymore. Unsubscribe me please.",
        "I can't unsubscribe with your link, it is broken: please remove me.",
        "There is no unsubscribe link in your mail! Remove me from your list.",
        "Don't email me again.",
        "I have no time to read it unsubscribe me",
        "Not interested unsubscribe",
        "I never signed up for this unsubscribe me",
        "Ich habe das nie abonniert abmelden bitte",
        "Je ne la lis plus, désinscrivez-moi.",
        "Ich lese ihn nicht mehr, bitte abmelden.",
        "Ya no leo sus correos, denme de baja.",
    ],
)
def test_requests_with_a_negation_elsewhere_still_count(body: str, ctx: Context) -> None:
    verdict = classify(mail(body), ctx)
    assert verdict.kind is Kind.PERSON_OPTOUT, verdict.reason
    assert verdict.sender_optout


SIGNATURES = [
    # corporate disclaimer under the name, no "-- " delimiter
    "Hi, could you send me the invoice for October?\n\nBest regards,\nJohn Smith\n"
    "Head of Sales, ACME Ltd\nIf you no longer wish to receive marketing emails from ACME, "
    "click here to unsubscribe.",
    # a list footer pasted under a plain question
    "Is the workshop on the 12th still on?\n\nJohn\n\nTo unsubscribe from this list, send a "
    "blank message to leave@acme.example.",
    # legal notice
    "Thanks for the great issue!\n\nJane Doe\nThis email and any attachments are "
    "confidential. If you are not the intended recipient, please delete it and do not "
    "forward it. To opt out of our mailings reply STOP.",
    # "Sent from" block of a mail app, with its own promotion under it
    "See you at the event.\n\nSent from Mail for Windows\nUnsubscribe from Windows tips",
    "Quick question: is there a recording?\n\nGet Outlook for Android\n"
    "Don't want these emails? Unsubscribe.",
    "Bonjour, l'atelier est-il complet ?\n\nCordialement,\nMarie Dupont\nSi vous ne souhaitez "
    "plus recevoir nos communications, cliquez ici pour vous désabonner.",
    "Bonjour, merci pour la lettre.\n\nMarie\nCe message et toutes ses pièces jointes sont "
    "confidentiels. Pour vous désinscrire de notre lettre, répondez STOP.",
    "Guten Tag, gibt es noch Plätze?\n\nMit freundlichen Grüßen\nHans Müller\nWenn Sie "
    "unseren Newsletter nicht mehr erhalten möchten, können Sie sich hier abmelden.",
    "Danke für die Infos!\n\nVon meinem iPhone gesendet\nNewsletter abbestellen: hier klicken",
    "Hola, ¿hay plazas libres?\n\nUn saludo,\nAna García\nSi no desea recibir más correos, "
    "puede darse de baja aquí.",
    "Gracias por la información.\n\nEnviado desde mi Samsung\nPara darse de baja, responda BAJA.",
]


@pytest.mark.parametrize("body", SIGNATURES)
def test_wording_in_the_senders_signature_is_not_a_request(body: str, ctx: Context) -> None:
    verdict = classify(mail(body), ctx)
    assert verdict.kind is Kind.OTHER, verdict.reason
    assert verdict.folder == "Review"


def test_disclaimer_in_an_html_only_mail_is_not_a_request(ctx: Context) -> None:
    html = (
        "<html><body><p>Bonjour, reste-t-il des places pour l'atelier&nbsp;?</p>"
        "<p>Bien cordialement,<br>Luc Martin<br>Directeur, Exemple SA</p>"
        "<p style='font-size:7pt'>Ce message et toutes ses pi&egrave;ces jointes sont "
        "confidentiels. Si vous ne souhaitez plus recevoir nos offres, "
        "<a href='https://exemple.example/desinscription'>d&eacute;sabonnez-vous ici</a>."
        "</p></body></html>"
    )
    raw = (
        mail("")
        .replace(b"text/plain", b"text/html")
        .replace(b"\r\n\r\n\r\n", b"\r\n\r\n" + html.encode())
    )
    verdict = classify(raw, ctx)
    assert verdict.kind is Kind.OTHER, verdict.reason
    assert verdict.folder == "Review", verdict.reason


@pytest.mark.parametrize(
    "body",
    [
        # a gateway banner on top, the request below
        "[EXTERNAL] This message was sent from outside the organisation.\n\nPlease unsubscribe me."
        "\n\nBest regards,\nJohn",
        "Please remove me from your list.\n\nKind regards,\nJohn\nThis email is confidential.",
        # the person's own words that merely look like a disclaimer's opening
        "This email is to ask you to unsubscribe me from your newsletter.",
        "Ce message est pour vous demander de me désabonner.",
        "Diese E-Mail ist meine Abmeldung: bitte tragen Sie mich aus.",
        "Este mensaje es para darme de baja de la lista.",
    ],
)
def test_request_above_a_signature_or_under_a_banner_still_counts(body: str, ctx: Context) -> None:
    verdict = classify(mail(body), ctx)
    assert verdict.kind is Kind.PERSON_OPTOUT, verdict.reason


OTHER_ADDRESS = [
    "Hello,\n\nplease unsubscribe my old work address jack.old@work.example, I left "
    "that company.\n\nCarol",
    "Could you remove the address jack.old@work.example from your list? It is my former "
    "office account.",
    "Unsubscribe jack.old@work.example please.",
    "Merci de désinscrire mon ancienne adresse jack.old@work.example.",
    "Bitte tragen Sie jack.old@work.example aus dem Verteiler aus.",
    "Por favor, den de baja la dirección jack.old@work.example de su lista.",
]


@pytest.mark.parametrize("body", OTHER_ADDRESS)
def test_request_about_another_address_leaves_the_sender(body: str, ctx: Context) -> None:
    verdict = classify(mail(body), ctx)
    assert verdict.kind is Kind.PERSON_OPTOUT, verdict.reason
    assert verdict.requested == ["jack.old@work.example"]
    assert verdict.sender_optout is False
    assert verdict.evidence["sender_optout"] is False


@pytest.mark.parametrize(
    "body",
    [
        "Please unsubscribe me and my old address jack.old@work.example.",
        "Merci de me désabonner, ainsi que jack.old@work.example.",
        "Bitte melden Sie mich ab, und auch jack.old@work.example.",
        "Por favor, darme de baja, y también a jack.old@work.example.",
    ],
)
def test_request_for_me_and_another_address_covers_both(body: str, ctx: Context) -> None:
    verdict = classify(mail(body), ctx)
    assert verdict.kind is Kind.PERSON_OPTOUT, verdict.reason
    assert verdict.requested == ["jack.old@work.example"]
    assert verdict.sender_optout is True
