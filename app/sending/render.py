"""Campaign -> personalised MIME bytes, pure (no DB, no network) and fast.

`prepare_campaign` does every per-campaign step once (Markdown, layout, CSS inlining, the text
version, sandboxed compilation, static headers, the QP encoding of static text, token
serializers); `render_message` then only renders personal values and joins pre-encoded bytes.
The result is a complete RFC 5322 message with CRLF line endings, ready for SmtpPool.send.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from itsdangerous import URLSafeSerializer
from itsdangerous.encoding import base64_encode
from jinja2 import TemplateError
from sqlmodel import Session, col, select

from app.errors import ConfigurationError, InvalidInput
from app.link_secrets import link_tag
from app.links import link_token
from app.models import Campaign, CampaignTopic, Subscriber, Topic
from app.models.enums import Category
from app.sending.compliance import check_rendered
from app.sending.dkim import Signer
from app.sending.footer import FOOTER_VARIABLE, campaign_footers, reader_language
from app.sending.mime import (
    ascii_address,
    clean_text,
    header,
    join_pieces,
    mailbox,
    phrase,
    recipient_address,
    sender_address,
    to_header,
    unstructured,
)
from app.sending.sandbox import TemplateLimitError
from app.sending.templating import CompiledTemplate, campaign_context, compile_campaign_tracked
from app.sending.tracking import TOKEN_VARIABLE, TrackingPlan
from app.settings import Settings, get_settings
from app.tokens import Purpose
from app.verp import VerpMinter, bounce_base


@dataclass(frozen=True)
class Recipient:
    """Who a message goes to: the subscriber's id and link secret (for links and the
    Message-ID, app/link_secrets.py) and fields."""

    id: int
    email: str
    name: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    link_secret: str = ""
    tracking: bool = False
    """Their copy carries the pixel and the tracked links (their choice, or the default
    when they never chose; the campaign's own switches decide the rest)."""
    language: str | None = None
    """Their stored language: the footer's words are in it (None: the default)."""


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    message_id: str  # with angle brackets, as in the header
    envelope_from: str
    rcpt: str
    data: bytes  # the exact bytes to send (CRLF, signed when DKIM is configured)


@dataclass(frozen=True, slots=True)
class Preview:
    subject: str
    html: str
    text: str


@dataclass(slots=True)
class PreparedCampaign:
    """Everything about a campaign that does not depend on the recipient."""

    campaign_id: int
    category: Category
    html: CompiledTemplate
    text: CompiledTemplate
    subject: CompiledTemplate
    preheader: CompiledTemplate | None  # None: no preheader (nothing is added to the HTML)
    static_subject: str | None  # the subject when it has no personal fields
    static_subject_header: bytes | None
    from_domain: str
    envelope_from: str  # test sends; campaign mail goes from verp(subscriber) when set
    head: bytes  # From, Reply-To, List-Id, List-Unsubscribe-Post, MIME-Version, Content-Type
    text_part_head: bytes
    html_part_head: bytes
    closing: bytes
    base_url: str
    mailto: str
    unsubscribe: _Minter
    preferences: _Minter
    msgid_mac: Any  # hmac object keyed once; copied per message
    signer: Signer | None = None
    verp: VerpMinter | None = None  # the signed per-recipient envelope sender
    tracked: tuple[CompiledTemplate, CompiledTemplate] | None = None
    """(html, text) with the pixel and tracked links (app/sending/tracking.py), or None
    when the campaign tracks neither opens nor clicks."""
    opener: _Minter | None = None  # the per-message OPEN token of tracked copies
    footers: dict[str, dict[str, str]] = field(default_factory=dict)
    """The footer's words by language (app/sending/footer.py), translated once here."""


class _Minter:
    """app.tokens.mint for id-list payloads, with the key derived once per campaign.

    itsdangerous re-derives the key and tries zlib on every dumps, a large share of a
    message's cost (docs/DESIGN.md, "Measured figures"); the token format is the same
    (compact JSON, base64url, "." HMAC), and tests/sending/test_render.py checks the links
    equal app.links' own and verify.
    """

    def __init__(self, settings: Settings, purpose: Purpose) -> None:
        # Same construction as app.tokens.mint: the last key of the reversed list signs.
        signer = URLSafeSerializer(
            list(reversed(settings.signing_keys)), salt=purpose.value
        ).make_signer()
        self._mac = hmac.new(signer.derive_key(), digestmod=signer.digest_method)
        self._sep = signer.sep

    def __call__(self, ids: list[int], tag: str) -> str:
        """The token of payload [*ids, tag] (the tag is hex: no JSON escaping needed)."""
        body = base64_encode(("[" + "".join(f"{int(i)}," for i in ids) + f'"{tag}"]').encode())
        mac = self._mac.copy()
        mac.update(body)
        return (body + self._sep + base64_encode(mac.digest())).decode("ascii")


def _sender(campaign: Campaign, settings: Settings) -> tuple[str, str]:
    name, address = sender_address(campaign.from_addr or settings.from_address)
    if not address:
        raise ConfigurationError("the campaign has no valid From address (set OCTOMAIL_FROM)")
    try:
        address = ascii_address(address)
    except InvalidInput as exc:
        raise ConfigurationError(f"invalid From address: {exc}") from exc
    return name or settings.org_name, address


def _bounce_base(settings: Settings) -> str:
    """The envelope sender's base: the mailbox the poller reads (see app/verp.py)."""
    base = bounce_base(settings)
    if not base:
        return ""
    try:
        return ascii_address(clean_text(base))
    except InvalidInput as exc:
        raise ConfigurationError(f"invalid OCTOMAIL_BOUNCE_ADDRESS: {exc}") from exc


def _tracking_plan(campaign: Campaign, settings: Settings) -> TrackingPlan | None:
    if not (campaign.track_opens or campaign.track_clicks):
        return None
    base = settings.base_url.rstrip("/")
    campaign_id = int(campaign.id or 0)
    return TrackingPlan(
        base_url=base,
        sign_link=lambda url: link_token(campaign_id, url, settings),
        opens=campaign.track_opens,
        clicks=campaign.track_clicks,
        own_pages=(f"{base}/u/", f"{base}/preferences/"),
    )


def _compile(
    campaign: Campaign, settings: Settings, topic_names: list[str]
) -> tuple[
    tuple[CompiledTemplate, CompiledTemplate, CompiledTemplate, CompiledTemplate | None],
    tuple[CompiledTemplate, CompiledTemplate] | None,
]:
    """((html, text, subject, preheader), tracked (html, text) or None); the preheader is
    None when empty."""
    context = campaign_context(
        org_name=settings.org_name,
        postal_address=settings.postal_address,
        topics=list(topic_names),
        category=Category(campaign.category).value,
        campaign_id=int(campaign.id or 0),
        campaign_name=campaign.name,
    )
    preheader_source = (campaign.preheader or "").strip()
    (html, text, subject, preheader), tracked = compile_campaign_tracked(
        campaign.body,
        campaign.body_format,
        campaign.layout or "default",
        campaign.subject,
        context,
        layout_dir=settings.email_layout_dir,
        preheader=preheader_source,
        tracking=_tracking_plan(campaign, settings),
    )
    return (html, text, subject, (preheader if preheader_source else None)), tracked


def prepare_campaign(
    campaign: Campaign, *, settings: Settings, topic_names: list[str] | None = None
) -> PreparedCampaign:
    """Compile a campaign once; raises ConfigurationError / InvalidInput before any send."""
    category = Category(campaign.category)
    if category == Category.MARKETING and not settings.postal_address.strip():
        raise ConfigurationError(
            "a marketing campaign needs the sender's postal address: set OCTOMAIL_POSTAL_ADDRESS"
        )
    from_name, from_address = _sender(campaign, settings)
    domain = from_address.rpartition("@")[2]
    campaign_id = int(campaign.id or 0)
    bounces = _bounce_base(settings)
    (html, text, subject, preheader), tracked = _compile(campaign, settings, topic_names or [])
    static_subject = None if "{" in campaign.subject else clean_text(campaign.subject)
    boundary = f"=_om_{secrets.token_hex(12)}"  # "=_" never occurs in QP or base64 output
    list_slug = "".join(c for c in settings.org_name.lower() if c.isalnum()) or "octomail"
    head = [header("From", mailbox(from_name, from_address))]
    if campaign.reply_to.strip():
        _, reply_to = sender_address(campaign.reply_to)
        head.append(header("Reply-To", ascii_address(reply_to)))
    head += [
        header("List-Id", f"{phrase(settings.org_name)} <{list_slug}.{domain}>".lstrip()),
        header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        header("MIME-Version", "1.0"),
        header("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
        b"\r\n",
    ]
    part = (
        "\r\nContent-Type: text/{}; charset=utf-8"
        "\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    prepared = PreparedCampaign(
        campaign_id=campaign_id,
        category=category,
        html=html,
        text=text,
        subject=subject,
        preheader=preheader,
        static_subject=static_subject,
        static_subject_header=None
        if static_subject is None
        else header("Subject", unstructured(static_subject)),
        from_domain=domain,
        envelope_from=bounces or from_address,
        head=b"".join(head),
        text_part_head=(f"--{boundary}" + part.format("plain")).encode(),
        html_part_head=(f"\r\n--{boundary}" + part.format("html")).encode(),
        closing=f"\r\n--{boundary}--\r\n".encode(),
        base_url=settings.base_url.rstrip("/"),
        mailto=settings.unsubscribe_mailto.strip(),
        unsubscribe=_Minter(settings, Purpose.UNSUBSCRIBE),
        preferences=_Minter(settings, Purpose.PREFS),
        msgid_mac=hmac.new(
            hashlib.sha256(b"octomail-message-id\0" + settings.signing_keys[0].encode()).digest(),
            digestmod=hashlib.sha256,
        ),
        signer=Signer.from_settings(settings),
        verp=VerpMinter(settings, bounces, campaign_id) if bounces else None,
        tracked=tracked,
        opener=_Minter(settings, Purpose.OPEN) if tracked else None,
        footers=_footers(settings, topic_names or [], (html, text, *(tracked or ()))),
    )
    # A trial render surfaces runtime template errors (sandbox violations, bad filters) now,
    # as one clear error, instead of one failed send per recipient.
    render_message(prepared, SAMPLE, settings=settings)
    if tracked:
        render_message(prepared, TRACKED_SAMPLE, settings=settings)
    if category == Category.MARKETING:
        _check_footer(prepared, settings)
    return prepared


def _footers(
    settings: Settings, topic_names: list[str], templates: tuple[CompiledTemplate, ...]
) -> dict[str, dict[str, str]]:
    """Each language's footer, its words pre-encoded in the templates that may show them."""
    footers = campaign_footers(org_name=settings.org_name, topics=topic_names)
    for template in templates:
        template.precode(word for words in footers.values() for word in words.values())
    return footers


def _check_footer(prepared: PreparedCampaign, settings: Settings) -> None:
    """The sample message, as rendered, shows the unsubscribe link and the postal address
    in both parts: checked once per campaign, so no marketing send goes out without."""
    shown = render_preview(prepared, SAMPLE, settings=settings)
    values, _token = _values(prepared, SAMPLE, link_tag(SAMPLE.link_secret))
    check_rendered(
        shown.html,
        shown.text,
        unsubscribe_url=values["unsubscribe_url"],
        postal_address=settings.postal_address,
    )


SAMPLE = Recipient(id=0, email="sample@example.org", name="Sample Person")
TRACKED_SAMPLE = Recipient(id=0, email="sample@example.org", name="Sample Person", tracking=True)


_date_cache: tuple[int, str] = (0, "")


def _date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        # "+0000" (UTC, known) rather than formatdate's "-0000" (RFC 5322: zone unknown).
        _date_cache = (now, formatdate(now, localtime=False)[:-5] + "+0000")
    return _date_cache[1]


def message_id(prepared: PreparedCampaign, subscriber_id: int, tag: str) -> str:
    """Deterministic per (campaign, subscriber): a re-send after a crash has the same id.
    Carries the subscriber's link tag (app/inbound/identity.py reads and verifies it)."""
    local = f"c{prepared.campaign_id}.s{subscriber_id}.{tag}"
    mac = prepared.msgid_mac.copy()
    mac.update(local.encode())
    return f"<{local}.{mac.hexdigest()[:12]}@{prepared.from_domain}>"


def _personal(recipient: Recipient) -> dict[str, Any]:
    """The person's own template variables (the links are added per message)."""
    name = clean_text(recipient.name or "")
    return {
        "name": name,
        "first_name": name.split(" ", 1)[0] if name else "",
        "email": recipient.email,
        "attributes": recipient.attributes or {},
    }


def received_subject(
    campaign: Campaign, recipient: Recipient, *, settings: Settings, topic_names: list[str]
) -> str:
    """The subject `recipient` got from `campaign`, rendered again as the send did (same
    sandbox, same budget) from the person's current fields: subjects are not stored per
    send (docs/DESIGN.md). Links in a subject render empty: no token is minted for this.
    Falls back to the template if it no longer renders."""
    if "{" not in campaign.subject:
        return clean_text(campaign.subject)
    context = campaign_context(
        org_name=settings.org_name,
        postal_address=settings.postal_address,
        topics=topic_names,
        category=campaign.category,
        campaign_id=int(campaign.id or 0),
        campaign_name=campaign.name,
    )
    values = {**_personal(recipient), "unsubscribe_url": "", "preferences_url": ""}
    try:
        template = CompiledTemplate(campaign.subject, autoescape=False, context=context)
        return clean_text(template.render(values))
    except (TemplateError, TemplateLimitError, ValueError, RecursionError, MemoryError):
        return campaign.subject


def subject_received(session: Session, campaign: Campaign, subscriber: Subscriber) -> str:
    """received_subject() for a stored person, with the campaign's topics as the send had
    them (by topic id, their names): what the data export lists."""
    topics = session.exec(
        select(Topic.name)
        .join(CampaignTopic, col(CampaignTopic.topic_id) == Topic.id)
        .where(CampaignTopic.campaign_id == campaign.id)
        .order_by(col(Topic.id))
    ).all()
    recipient = Recipient(
        id=int(subscriber.id or 0),
        email=subscriber.email,
        name=subscriber.name,
        attributes=subscriber.attributes,
    )
    return received_subject(campaign, recipient, settings=get_settings(), topic_names=list(topics))


def _values(
    prepared: PreparedCampaign, recipient: Recipient, tag: str
) -> tuple[dict[str, Any], str]:
    token = prepared.unsubscribe([recipient.id, prepared.campaign_id], tag)
    values = {
        **_personal(recipient),
        "unsubscribe_url": f"{prepared.base_url}/u/{token}",
        "preferences_url": f"{prepared.base_url}/preferences/"
        f"{prepared.preferences([recipient.id], tag)}",
    }
    if prepared.footers:  # else the campaign context's, in the default language
        values[FOOTER_VARIABLE] = prepared.footers[reader_language(recipient.language)]
    subject = prepared.static_subject
    if subject is None:
        subject = clean_text(prepared.subject.render(values))
    values["subject"] = subject
    values["preheader"] = (
        clean_text(prepared.preheader.render(values)) if prepared.preheader else ""
    )
    return values, token


def _assemble(
    prepared: PreparedCampaign,
    recipient: Recipient,
    rcpt: str,
    msgid: str,
    subject: str,
    values: dict[str, Any],
    token: str,
    tracked: bool = False,
) -> bytes:
    unsubscribe = f"<{values['unsubscribe_url']}>"
    if prepared.mailto:
        # The token is base64url plus ".": only the space needs escaping (as links.py does).
        mailto = f"mailto:{prepared.mailto}?subject=unsubscribe%20{token}"
        unsubscribe += f",\r\n <{mailto}>"
    subject_header = prepared.static_subject_header  # set with static_subject, or None
    if subject_header is None or subject is not prepared.static_subject:
        subject_header = header("Subject", unstructured(subject))
    out = [
        header("Date", _date()),
        header("Message-ID", msgid),
        subject_header,
        to_header(recipient.name or "", rcpt),
        header("List-Unsubscribe", unsubscribe),
        prepared.head,
        prepared.text_part_head,
    ]
    html, text = (
        prepared.tracked if tracked and prepared.tracked else (prepared.html, prepared.text)
    )
    join_pieces(text.qp_pieces(values), out)
    out.append(prepared.html_part_head)
    join_pieces(html.qp_pieces(values), out)
    out.append(prepared.closing)
    data = b"".join(out)
    return prepared.signer.sign(data) if prepared.signer else data


def render_message(
    prepared: PreparedCampaign, recipient: Recipient, *, settings: Settings
) -> RenderedMessage:
    """One personalised message; raises InvalidInput for an undeliverable address."""
    rcpt = recipient_address(recipient.email)
    tag = link_tag(recipient.link_secret)
    msgid = message_id(prepared, recipient.id, tag)
    tracked = recipient.tracking and prepared.opener is not None
    try:
        values, token = _values(prepared, recipient, tag)
        if tracked and prepared.opener is not None:
            values[TOKEN_VARIABLE] = prepared.opener([recipient.id, prepared.campaign_id], tag)
        data = _assemble(
            prepared, recipient, rcpt, msgid, values["subject"], values, token, tracked
        )
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        # Marketers' templates can fail like any code ({{ 1/0 }}, iterating a number):
        # one clear domain error, raised by the trial render in prepare_campaign.
        raise InvalidInput(f"the campaign template cannot be rendered: {exc}") from exc
    envelope = prepared.verp(recipient.id) if prepared.verp else prepared.envelope_from
    return RenderedMessage(msgid, envelope, rcpt, data)


def render_test(
    prepared: PreparedCampaign,
    address: str,
    *,
    settings: Settings,
    recipient: Recipient | None = None,
) -> RenderedMessage:
    """A test-send to `address`: subject prefixed "[TEST]", personal fields from `recipient`
    (a sample subscriber) or empty ones, a random Message-ID so it never collides."""
    rcpt = recipient_address(address)
    sample = recipient or Recipient(id=0, email=address)
    values, token = _values(prepared, sample, link_tag(sample.link_secret))
    values["subject"] = f"[TEST] {values['subject']}"
    msgid = f"<test.{secrets.token_hex(8)}@{prepared.from_domain}>"
    data = _assemble(
        prepared,
        Recipient(id=sample.id, email=rcpt, name=sample.name),
        rcpt,
        msgid,
        values["subject"],
        values,
        token,
    )
    return RenderedMessage(msgid, prepared.envelope_from, rcpt, data)


def render_preview(
    prepared: PreparedCampaign, recipient: Recipient, *, settings: Settings
) -> Preview:
    """Subject, HTML and text exactly as `recipient` would get them (for the preview API/UI)."""
    try:
        values, _token = _values(prepared, recipient, link_tag(recipient.link_secret))
        return Preview(
            values["subject"], prepared.html.render(values), prepared.text.render(values)
        )
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        # Marketers' templates can fail like any code ({{ 1/0 }}, iterating a number):
        # one clear domain error, raised by the trial render in prepare_campaign.
        raise InvalidInput(f"the campaign template cannot be rendered: {exc}") from exc


__all__ = [
    "PreparedCampaign",
    "Preview",
    "Recipient",
    "RenderedMessage",
    "message_id",
    "prepare_campaign",
    "render_message",
    "render_preview",
    "render_test",
]
