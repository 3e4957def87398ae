"""The fixture mails and what each must lead to: verdict, folder, and effect on subscribers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, select

from app.mail.addresses import email_hmac
from app.models import (
    Campaign,
    CampaignStatus,
    CampaignTopic,
    ConsentEvent,
    Send,
    SendStatus,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Topic,
    utcnow,
)
from app.subscribers.consent import is_suppressed


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    folder: str
    # effect: (address, expected subscriber status or "suppressed"/"topic"), checked after
    effects: tuple[tuple[str, str], ...] = ()
    ack_to: str | None = None  # an acknowledgement goes to this address
    subject: str | None = None  # stored subject, when the charset is the point


P, R = "Processed", "Review"
CASES = [
    Case(
        "plain_request_en",
        "person_optout",
        P,
        (("carol@example.com", "unsubscribed"),),
        ack_to="carol@example.com",
    ),
    # Acknowledgements go only to a From our MTA authenticated (plain_request_en: DMARC pass;
    # gmail_reply_request_de: aligned DKIM pass) or that replied to our signed Message-ID for
    # that very address (outlook_reply_request_es); every other opt-out is honoured unacked.
    Case("html_only_request_fr", "person_optout", P, (("denis@example.fr", "unsubscribed"),)),
    Case("gmail_reply_quoted_newsletter", "other", R, (("erin@example.com", "active"),)),
    Case(
        "gmail_reply_request_de",
        "person_optout",
        P,
        (("frank@example.de", "unsubscribed"),),
        ack_to="frank@example.de",
    ),
    Case("outlook_reply_quoted", "other", R, (("grace@example.com", "active"),)),
    Case(
        "outlook_reply_request_es",
        "person_optout",
        P,
        (("hector@example.es", "unsubscribed"),),
        ack_to="hector@example.es",
    ),
    Case("apple_mail_reply_fr", "other", R, (("ines@example.fr", "active"),)),
    Case("thunderbird_forward", "other", R, (("jack@example.com", "active"),)),
    Case(
        "gmail_forward_with_request",
        "person_optout",
        P,  # a pass by mx.google.com: not ours
        (("kate@example.com", "unsubscribed"),),
    ),
    Case("out_of_office_quoting_footer", "automated", P, (("liam@example.com", "active"),)),
    Case("out_of_office_subject_only", "automated", P, (("mona@example.com", "active"),)),
    Case("dsn_postfix_hard", "hard_bounce", P, (("mia@example.com", "bounced"),)),
    Case("dsn_exim_text", "hard_bounce", P, (("noah@example.net", "bounced"),)),
    Case("dsn_exchange_hard", "hard_bounce", P, (("olivia@contoso.example", "bounced"),)),
    Case("dsn_gmail_hard", "hard_bounce", P, (("paul@gmail.example", "bounced"),)),
    Case("dsn_postfix_delayed", "soft_bounce", P, (("quinn@example.com", "active"),)),
    Case("arf_complaint", "complaint", P, (("rose@example.com", "complained"),)),
    Case("read_receipt", "report", P, (("sara@example.com", "active"),)),
    Case("mailto_subject_token", "token_optout", P, (("sam@example.com", "topic"),)),
    Case(
        "mailto_plus_token",
        "token_optout",
        P,
        (("tina@example.com", "unsubscribed"),),
        ack_to="tina@example.com",
    ),
    Case("malformed_mime", "unreadable", R, (("uma@example.com", "active"),)),
    Case("bad_charset", "unreadable", R, (("vera@example.com", "active"),)),
    Case(
        "iso8859_request_fr",
        "person_optout",
        P,
        (("ursula@example.fr", "unsubscribed"),),
        subject="Désinscription",
    ),
    Case(
        "windows1252_request_de",
        "person_optout",
        P,
        (("viktor@example.de", "unsubscribed"),),
        subject="Newsletter – bitte nicht mehr",
    ),
    Case(
        "koi8r_question",
        "other",
        R,
        (("boris@example.ru", "active"),),
        subject="Вопрос о первом выпуске",
    ),
    # Wendy asks for her old address: she is not opted out, Xavier's address gets a
    # confirmation link (and no opt-out until it is clicked).
    Case(
        "third_party_request",
        "person_optout",
        P,
        (("wendy@example.com", "untouched"), ("xavier@example.com", "active")),
    ),
    Case("unknown_sender_request", "person_optout", P, (("yann@unknown.example", "suppressed"),)),
    Case(
        "undeclared_8bit_header",
        "person_optout",
        P,
        (("zoe@example.com", "unsubscribed"),),
        subject="Abbestellung für Zöe Müller",
    ),
    Case("plain_question", "other", R, (("adam@example.com", "active"),)),
    Case("own_message_loop", "automated", P),
    # The reader does what the person meant (issue 9, part 3).
    Case("outlook_negated_request_de", "other", R, (("bernd@example.de", "active"),)),
    Case("exchange_question_with_disclaimer", "other", R, (("oscar@contoso.example", "active"),)),
    Case("list_unsubscribe_auto", "person_optout", P, (("paula@example.com", "unsubscribed"),)),
    Case("iphone_request_es", "person_optout", P, (("rosa@example.es", "unsubscribed"),)),
    Case(
        "old_address_request_fr",
        "person_optout",
        P,
        (("celine@example.fr", "active"), ("celine.ancienne@example.fr", "active")),
    ),
    Case("precedence_bulk", "automated", P),
]
NOT_ACKED = [
    "liam@example.com",
    "mona@example.com",
    "mia@example.com",
    "rose@example.com",
    "erin@example.com",
    "wendy@example.com",
    "denis@example.fr",
    "kate@example.com",
    "sam.alt@elsewhere.example",
    "ursula@example.fr",
    "viktor@example.de",
    "yann@unknown.example",
    "zoe@example.com",
    "bernd@example.de",
    "oscar@contoso.example",
    "paula@example.com",
    "rosa@example.es",
    "celine@example.fr",
]
SUBSCRIBERS = sorted(
    {
        addr
        for case in CASES
        for addr, state in case.effects
        if state not in {"suppressed", "untouched"}
    }
)


@dataclass
class World:
    """Ids the placeholders in fixtures need: tokens, our own Message-ID."""

    ids: dict[str, int]
    news: int
    events: int
    campaign: int
    secrets: dict[str, str]  # link secrets: tokens and Message-IDs carry their tags


def populate(session: Session) -> World:
    """Topics news + events, every case's subscriber on both, a campaign on news sent to
    all of them yesterday (so their bounces and complaints are tied to our mail)."""
    news, events = Topic(slug="news", name="News"), Topic(slug="events", name="Events")
    session.add_all([news, events])
    session.flush()
    ids, secrets = {}, {}
    for address in SUBSCRIBERS:
        sub = Subscriber(email=address, name=address.split("@")[0].title())
        session.add(sub)
        session.flush()
        ids[address], secrets[address] = sub.id, sub.link_secret
        for topic in (news, events):
            session.add(
                Subscription(
                    subscriber_id=sub.id, topic_id=topic.id, status=SubscriptionStatus.SUBSCRIBED
                )
            )
    campaign = Campaign(name="November news", subject="November news", status=CampaignStatus.DONE)
    session.add(campaign)
    session.flush()
    session.add(CampaignTopic(campaign_id=campaign.id, topic_id=news.id))
    yesterday = utcnow() - timedelta(days=1)
    session.add_all(
        [
            Send(
                campaign_id=campaign.id,
                subscriber_id=sid,
                status=SendStatus.SENT,
                sent_at=yesterday,
            )
            for sid in ids.values()
        ]
    )
    session.commit()
    return World(ids=ids, news=news.id, events=events.id, campaign=campaign.id, secrets=secrets)


def placeholders(world: World) -> dict[str, str]:
    from app.inbound.identity import campaign_message_id
    from app.links import unsubscribe_token
    from app.settings import get_settings

    settings = get_settings()
    ids, secrets = world.ids, world.secrets
    sam, tina, adam = "sam@example.com", "tina@example.com", "adam@example.com"
    return {
        "{{TOKEN_SAM}}": unsubscribe_token(ids[sam], world.campaign, secret=secrets[sam]),
        "{{TOKEN_TINA}}": unsubscribe_token(ids[tina], 0, secret=secrets[tina]),
        "{{OWN_MSGID}}": campaign_message_id(settings, world.campaign, ids[adam], secrets[adam]),
        "{{MSGID_HECTOR}}": campaign_message_id(
            settings, world.campaign, ids["hector@example.es"], secrets["hector@example.es"]
        ),
    }


def check_effects(session: Session, case: Case, world: World) -> list[str]:
    """What a user would notice: statuses, subscriptions, suppression, consent events."""
    problems = []
    for address, expected in case.effects:
        sub = session.exec(select(Subscriber).where(Subscriber.email == address)).first()
        events = session.exec(
            select(ConsentEvent).where(ConsentEvent.email_hmac == email_hmac(address))
        ).all()
        if expected in {"untouched", "suppressed"}:
            problems += _unknown_address_problems(session, address, expected, sub, len(events))
        elif sub is None:
            problems.append(f"{address}: subscriber missing")
        else:
            problems += _subscriber_problems(session, address, expected, sub, len(events), world)
    return problems


def _unknown_address_problems(
    session: Session, address: str, expected: str, sub: Subscriber | None, events: int
) -> list[str]:
    """An address we do not know: left alone ("untouched") or only suppressed."""
    if expected == "untouched":  # an address we do not know, and still do not act on
        if sub is not None or is_suppressed(session, address) or events:
            return [f"{address}: expected no subscriber, suppression or event"]
        return []
    problems = []
    if sub is not None or not is_suppressed(session, address):
        problems.append(f"{address}: expected suppressed unknown address")
    if events != 1:
        problems.append(f"{address}: expected 1 consent event, got {events}")
    return problems


def _subscriber_problems(
    session: Session, address: str, expected: str, sub: Subscriber, events: int, world: World
) -> list[str]:
    """A known person: their status (or news-only opt-out), consent events and suppression."""
    problems = []
    session.refresh(sub)
    subs = {
        s.topic_id: s.status
        for s in session.exec(select(Subscription).where(Subscription.subscriber_id == sub.id))
    }
    if expected == "topic":
        if (
            sub.status != "active"
            or subs[world.news] != "unsubscribed"
            or subs[world.events] != "subscribed"
        ):
            problems.append(f"{address}: expected news-only opt-out, got {sub.status} {subs}")
    elif sub.status != expected:
        problems.append(f"{address}: expected {expected}, got {sub.status}")
    if expected == "active" and events:
        problems.append(f"{address}: expected no consent event, got {events}")
    if expected in {"unsubscribed", "bounced", "complained", "topic"} and events != 1:
        problems.append(f"{address}: expected 1 consent event, got {events}")
    if expected in {"unsubscribed", "bounced", "complained"} and not is_suppressed(
        session, address
    ):
        problems.append(f"{address}: expected on the suppression list")
    return problems
