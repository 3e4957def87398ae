"""What a verdict does to the database, in the caller's transaction: opt-outs through the one
opt-out function, soft-bounce counting, and the mails to send once the transaction commits.

Everything here is idempotent and keyed on the inbound_message row inserted in the same
transaction, so a crash either leaves both (then the message is only moved) or neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, or_, tuple_, update
from sqlmodel import Session, col, select

from app.errors import InvalidInput
from app.inbound import contact_actions
from app.inbound.classify import REVIEW, Kind, Verdict
from app.link_secrets import LEGACY, link_matches, link_tag
from app.mail.addresses import email_hmac, normalize_email
from app.models import (
    Channel,
    InboundMessage,
    InboundStatus,
    Scope,
    Send,
    SendStatus,
    Subscriber,
    SubscriberStatus,
    table_of,
    utcnow,
)
from app.settings import Settings
from app.subscribers.consent import Evidence, is_suppressed
from app.subscribers.optout import (
    OptOutRequest,
    OptOutResult,
    find_by_email,
    unsubscribe_many,
)
from app.subscribers.preferences import LinkScope, link_scopes

# A bounce or complaint with no signed tie (Message-ID, VERP) still acts when we mailed the
# address this recently: most bounces arrive within days, and a forger cannot make us have
# mailed someone.
RECENT_SEND = timedelta(days=30)
_REPORTS = {Kind.HARD_BOUNCE, Kind.SOFT_BOUNCE, Kind.COMPLAINT}


class RowLike(Protocol):
    """The inbound_message fields an action reads and sets (the poller passes a light view)."""

    @property
    def id(self) -> int | None: ...  # read only: a view's id is int, a model's int | None

    action: str
    status: InboundStatus
    folder: str
    reason: str
    evidence: dict[str, Any]
    address_hmac: str | None
    acked_at: datetime | None
    campaign_id: int | None


@dataclass
class _Wanted:
    """What a batch of verdicts names: the rows Batch.prefetch() loads for them."""

    ids: set[int] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    campaigns: set[int | None] = field(default_factory=set)
    soft: list[Verdict] = field(default_factory=list)
    reports: list[Verdict] = field(default_factory=list)

    @classmethod
    def of(cls, verdicts: Iterable[Verdict]) -> _Wanted:
        wanted = cls()
        for verdict in verdicts:
            if verdict.kind is Kind.SOFT_BOUNCE:
                wanted.soft.append(verdict)
            if verdict.kind in _REPORTS:
                wanted.reports.append(verdict)
            wanted.ids.update(tie.subscriber_id for tie in verdict.ties)
            wanted.ids.update(verdict.reply_subscribers)
            if verdict.subscriber_id:
                wanted.ids.add(verdict.subscriber_id)
            if verdict.campaign_id:
                wanted.campaigns.add(verdict.campaign_id)
            for address in (*verdict.recipients, *verdict.requested):
                if normal := _normal(address):
                    wanted.emails.add(normal)
        return wanted


class Batch:
    """What the actions of one batch of messages share, so a batch costs a few statements
    instead of a few per message: the subscribers and campaign scopes its verdicts name
    (prefetch, one query each), and its opt-outs, run through unsubscribe_many in ONE call
    (flush); each opt-out's follow-up (the row's action text) runs with its result.
    Results are those of running the requests one by one in message order.
    ImmediateBatch runs each opt-out at once instead."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._pending: list[tuple[OptOutRequest, Callable[[OptOutResult], None] | None]] = []
        self._everything_ids: set[int] = set()
        self._everything_addresses: set[str] = set()
        self._by_id: dict[int, Subscriber | None] = {}
        self._by_email: dict[str, Subscriber | None] = {}
        self._scopes: dict[int | None, LinkScope] = {}
        self._soft_bounces: dict[str, int] = {}  # address hash -> soft bounces counted so far
        self._soft_candidates: set[str] = set()
        self._sent_pairs: set[tuple[int, int]] = set()  # (campaign, subscriber) sends we made
        self._pairs_checked: set[tuple[int, int]] = set()
        self._recent: set[int] = set()  # subscribers we sent to within RECENT_SEND
        self._checked: set[int] = set()  # subscribers whose recent sends are known

    def prefetch(self, verdicts: Iterable[Verdict]) -> None:
        """Load every subscriber and campaign scope these verdicts may need, in one query
        each (into the session, so the opt-outs keep the loaded objects in step)."""
        wanted = _Wanted.of(verdicts)
        if wanted.ids or wanted.emails:
            self._load_subscribers(wanted.ids, wanted.emails)
        if wanted.campaigns:
            self._scopes.update(link_scopes(self.session, wanted.campaigns))
        if wanted.reports:
            self.load_sends(wanted.reports)
        for verdict in wanted.soft:  # the addresses _report() will count soft bounces for
            if targets := _targets(self, verdict):
                self._soft_candidates.add(email_hmac(targets[0].subscriber.email))

    def _load_subscribers(self, ids: set[int], emails: set[str]) -> None:
        """The subscribers with these ids or addresses, in one query; None for the missing."""
        found = self.session.exec(
            select(Subscriber).where(
                or_(
                    col(Subscriber.id).in_(sorted(ids)),
                    col(Subscriber.email).in_(sorted(emails)),
                )
            )
        ).all()
        self._by_id.update(dict.fromkeys(ids))
        self._by_email.update(dict.fromkeys(emails))
        for sub in found:
            if sub.id is not None:
                self._by_id[sub.id] = sub
            self._by_email[sub.email] = sub

    def load_sends(self, verdicts: list[Verdict]) -> None:
        """What ties these reports to our mail, in at most two queries: which of their
        signed (campaign, subscriber) pairs are sends we made (a signature proves we minted
        the id, the row that the id still means the person we mailed: an erased person's
        sends lose their subscriber id), and which named subscribers we mailed recently."""
        pairs = {
            (t.campaign_id, t.subscriber_id) for v in verdicts for t in v.ties
        } - self._pairs_checked
        named = {
            sub.id
            for v in verdicts
            for a in v.recipients
            if (normal := _normal(a))
            and (sub := self.by_email(normal)) is not None
            and sub.id is not None
        } - self._checked
        table = table_of(Send)
        if pairs:
            self._sent_pairs.update(
                (c, s)
                for c, s in self.session.execute(
                    select(table.c.campaign_id, table.c.subscriber_id).where(
                        tuple_(table.c.campaign_id, table.c.subscriber_id).in_(sorted(pairs)),
                        table.c.status.in_(_SENT),
                    )
                ).all()
            )
            self._pairs_checked.update(pairs)
        if named:
            self._recent.update(
                self.session.execute(
                    select(table.c.subscriber_id)
                    .distinct()
                    .where(
                        table.c.subscriber_id.in_(sorted(named)),
                        table.c.status == SendStatus.SENT.value,
                        table.c.sent_at >= utcnow() - RECENT_SEND,
                    )
                ).scalars()
            )
            self._checked.update(named)

    def sent(self, campaign_id: int, subscriber_id: int) -> bool:
        """Whether we made this send (load_sends() asked for it)."""
        return (campaign_id, subscriber_id) in self._sent_pairs

    def mailed_recently(self, subscriber_id: int) -> bool:
        """Whether we sent to this subscriber within RECENT_SEND (load_sends() asked)."""
        return subscriber_id in self._recent

    def subscriber(self, subscriber_id: int) -> Subscriber | None:
        if subscriber_id in self._by_id:
            return self._by_id[subscriber_id]
        return self.session.get(Subscriber, subscriber_id)

    def by_email(self, normal: str) -> Subscriber | None:
        if normal in self._by_email:
            return self._by_email[normal]
        return find_by_email(self.session, normal)

    def campaign_topics(self, campaign_id: int) -> list[int]:
        if campaign_id not in self._scopes:
            self._scopes.update(link_scopes(self.session, [campaign_id]))
        return list(self._scopes[campaign_id].topic_ids)

    def soft_bounces(self, row: RowLike, since: datetime) -> int:
        """Soft bounces for row.address_hmac since `since`, this row and the earlier ones of
        the batch included. Batched: one grouped count per batch (the batch's rows get
        their hash in the poller's final update, so the count sees only earlier batches)."""
        table = table_of(InboundMessage)
        key = row.address_hmac or ""
        if key not in self._soft_bounces:
            # Every address of the batch at once (prefetch listed them).
            wanted = sorted({key} | (self._soft_candidates - self._soft_bounces.keys()))
            found = dict(
                self.session.execute(
                    select(table.c.address_hmac, func.count())
                    .where(
                        table.c.address_hmac.in_(wanted),
                        table.c.verdict == Kind.SOFT_BOUNCE.value,
                        table.c.created_at >= since,
                    )
                    .group_by(table.c.address_hmac)
                ).all()
            )
            self._soft_bounces.update({h: int(found.get(h, 0)) for h in wanted})
        self._soft_bounces[key] += 1
        return self._soft_bounces[key]

    def add(
        self, request: OptOutRequest, then: Callable[[OptOutResult], None] | None = None
    ) -> None:
        """Queue an opt-out for flush(); `then` gets its result."""
        self._pending.append((request, then))
        if request.scope is Scope.ALL:
            sub = request.subscriber
            sub_id = sub.id if isinstance(sub, Subscriber) else sub
            if sub_id is not None:
                self._everything_ids.add(sub_id)
            elif request.address and (normal := _normal(request.address)):
                self._everything_addresses.add(normal)

    def opting_out(self, subscriber: Subscriber, address: str) -> bool:
        """Whether a pending request of this batch opts this person out of everything."""
        return subscriber.id in self._everything_ids or address in self._everything_addresses

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        self._everything_ids.clear()
        self._everything_addresses.clear()
        if not pending:
            return
        results = unsubscribe_many(self.session, [request for request, _ in pending])
        for (_request, then), result in zip(pending, results, strict=True):
            if then is not None:
                then(result)


class ImmediateBatch(Batch):
    """A Batch whose opt-outs run at once: the poller's retry after a failed action (one
    savepoint per message, so an opt-out cannot wait for a flush outside it), and what a
    lone apply() uses."""

    def soft_bounces(self, row: RowLike, since: datetime) -> int:
        """Soft bounces for row.address_hmac since `since`: the row's hash is stored first,
        then counted, so this row and every earlier one are in the count."""
        table = table_of(InboundMessage)
        self.session.execute(
            update(table).where(table.c.id == row.id).values(address_hmac=row.address_hmac)
        )
        counted = (
            select(func.count())
            .select_from(table)
            .where(
                table.c.address_hmac == row.address_hmac,
                table.c.verdict == Kind.SOFT_BOUNCE.value,
                table.c.created_at >= since,
            )
        )
        return int(self.session.execute(counted).scalar_one())

    def add(
        self, request: OptOutRequest, then: Callable[[OptOutResult], None] | None = None
    ) -> None:
        """Run the opt-out now; `then` gets its result."""
        [result] = unsubscribe_many(self.session, [request])
        if then is not None:
            then(result)


# Sends that reached the SMTP server (or may have: a worker died after handing it over).
_SENT = (SendStatus.SENT.value, SendStatus.SENDING.value, SendStatus.BOUNCED.value)


def _evidence(settings: Settings, row: RowLike, verdict: Verdict) -> Evidence:
    return Evidence(
        policy_version=settings.policy_version,
        details={
            "inbound_id": row.id,
            "message_id": verdict.message_id[:300],
            "rule": verdict.evidence.get("rule", verdict.kind.value),
            "reason": verdict.reason[:300],
            # DKIM/SPF/DMARC as our MTA saw them (opt-outs by email only; empty otherwise)
            **({"auth": verdict.auth} if verdict.auth else {}),
        },
    )


def _normal(address: str) -> str | None:
    try:
        return normalize_email(address)
    except InvalidInput:
        return None


@dataclass(frozen=True)
class _Target:
    """A subscriber a report may act on, what ties the report to mail we sent them, and
    the campaign of that mail when a signed Message-ID or VERP address says it."""

    subscriber: Subscriber
    why: str
    campaign_id: int | None = None


def _targets(batch: Batch, verdict: Verdict) -> list[_Target]:
    """Subscribers a report may act on, each with what ties the report to mail we sent them:
    a signed Message-ID or VERP address of a send we made, else a send to the named address
    within RECENT_SEND. Named addresses with no tie are left alone."""
    found: dict[int, _Target] = {}
    for tie in verdict.ties:
        if tie.subscriber_id in found or not batch.sent(tie.campaign_id, tie.subscriber_id):
            continue
        sub = batch.subscriber(tie.subscriber_id)
        if (
            sub is None
            or sub.id is None
            or (
                tie.link_tag is not None
                and not link_matches(tie.link_tag, sub.link_secret, sub.legacy_links)
            )
        ):
            continue  # erased, or a Message-ID made for someone else under this id
        found[sub.id] = _Target(sub, f"{tie.how} of campaign {tie.campaign_id}", tie.campaign_id)
    for address in verdict.recipients:
        normal = _normal(address)
        sub = batch.by_email(normal) if normal else None
        if (
            sub is not None
            and sub.id is not None
            and sub.id not in found
            and batch.mailed_recently(sub.id)
        ):
            found[sub.id] = _Target(sub, f"sent to within {RECENT_SEND.days} days")
    return list(found.values())


def apply(
    session: Session, settings: Settings, row: RowLike, verdict: Verdict, batch: Batch | None = None
) -> list[dict[str, Any]]:
    """Act on a recorded verdict; sets row.action (and address_hmac); returns mails to send.

    With `batch`, the opt-outs are queued there and row.action is final only after its
    flush(); without, they run at once."""
    evidence = _evidence(settings, row, verdict)
    queue = batch if batch is not None else ImmediateBatch(session)
    act = _Act(session, settings, row, verdict, evidence, queue)
    kind = verdict.kind
    if kind in (Kind.HARD_BOUNCE, Kind.SOFT_BOUNCE, Kind.COMPLAINT):
        return act.report()
    if kind is Kind.TOKEN_OPTOUT:
        return act.token()
    if kind is Kind.PERSON_OPTOUT:
        return act.person()
    if kind is Kind.CONTACT_UPDATE:
        return act.contact_update()
    row.action = "none"
    return []


@dataclass
class _Act:
    """One verdict being acted on and what every action of apply() reads, so the actions
    share one set of arguments."""

    session: Session
    settings: Settings
    row: RowLike
    verdict: Verdict
    evidence: Evidence
    batch: Batch

    def review(self, action: str) -> list[dict[str, Any]]:
        """Leave the message to a person: to Review, with `action`; no mail."""
        self.row.action = action
        self.row.status, self.row.folder = InboundStatus.REVIEW, REVIEW
        return []

    def contact_update(self) -> list[dict[str, Any]]:
        """A change of one's own address or name (app/inbound/contact_actions.py), trusted by
        the same evidence as an opt-out's acknowledgement."""
        row, verdict = self.row, self.verdict
        sender = _normal(verdict.from_addr)
        trusted = _ack_trust(self.batch, verdict, sender) if sender else None
        if sender:
            row.address_hmac = email_hmac(sender)
        return contact_actions.apply_update(
            self.session, self.settings, row, verdict, self.evidence, sender, trusted
        )

    def report(self) -> list[dict[str, Any]]:
        """A bounce or complaint: acts only on people it is tied to (_targets)."""
        row, verdict, evidence, batch = self.row, self.verdict, self.evidence, self.batch
        settings = self.settings
        batch.load_sends([verdict])  # nothing to load when the batch's prefetch did it
        tied = _targets(batch, verdict)
        channel = Channel.COMPLAINT if verdict.kind is Kind.COMPLAINT else Channel.BOUNCE
        if not tied:
            # Forged, misdirected, or about someone we never mailed: a person decides.
            named = ", ".join(verdict.recipients[:3]) or "no recipient named"
            row.reason = (
                f"{row.reason}; not tied to our mail ({named}): no signed Message-ID "
                f"or VERP address of a send of ours, and no mail sent to the address "
                f"in the last {RECENT_SEND.days} days"
            )[:2000]
            row.evidence = {**row.evidence, "tie": None, "named": verdict.recipients[:20]}
            return self.review("none: not tied to our mail")
        targets = [t.subscriber for t in tied]
        row.address_hmac = email_hmac(targets[0].email)
        row.evidence = {**row.evidence, "tie": {str(t.subscriber.id): t.why for t in tied}}
        evidence.details["tie"] = tied[0].why
        # The campaign the report is about (reports count its bounces and complaints).
        row.campaign_id = tied[0].campaign_id
        if verdict.kind is Kind.SOFT_BOUNCE:
            count = batch.soft_bounces(row, utcnow() - settings.soft_bounce_window)
            if count < settings.soft_bounce_limit:
                row.action = f"soft bounce {count}/{settings.soft_bounce_limit}"
                return []
            evidence.details["soft_bounces"] = count
            row.action = f"bounced after {count} soft bounces"
        else:
            row.action = "complaint: unsubscribed" if channel is Channel.COMPLAINT else "bounced"
        for target in tied:
            batch.add(
                OptOutRequest(
                    subscriber=target.subscriber,
                    scope=Scope.ALL,
                    channel=channel,
                    evidence=evidence,
                    campaign_id=target.campaign_id,
                    bounced_message=verdict.kind is Kind.HARD_BOUNCE,
                )
            )
        return []

    def token(self) -> list[dict[str, Any]]:
        """A signed unsubscribe token mailed back: the campaign's topics, or everything."""
        row, verdict, batch = self.row, self.verdict, self.batch
        sub = batch.subscriber(verdict.subscriber_id) if verdict.subscriber_id else None
        if sub is not None and not link_matches(
            verdict.link_tag or LEGACY, sub.link_secret, sub.legacy_links
        ):
            sub = None  # the token's person was erased: whoever has the id now is someone else
        if sub is None:
            if verdict.evidence.get("mail_client"):
                return self.stale_mail_client()
            row.action = "none: subscriber no longer exists"
            return []
        topic_ids = batch.campaign_topics(verdict.campaign_id) if verdict.campaign_id else []
        scope = Scope.TOPIC if topic_ids else Scope.ALL
        row.action = (
            f"unsubscribed from topics {sorted(topic_ids)}"
            if topic_ids
            else "unsubscribed from everything"
        )

        def done(result: OptOutResult) -> None:
            if not result.changed:
                row.action += " (already)"

        batch.add(
            OptOutRequest(
                subscriber=sub,
                scope=scope,
                topic_ids=topic_ids,
                channel=Channel.EMAIL,
                evidence=self.evidence,
                campaign_id=verdict.campaign_id or None,
            ),
            done,
        )
        return self.ack()

    def stale_mail_client(self) -> list[dict[str, Any]]:
        """A mail client's List-Unsubscribe request whose token names nobody any more: the
        person whose client sent it asked to leave, so it is honoured for its From address
        (unanswered: it is automated)."""
        self.evidence.details["token_names_nobody"] = True
        self.verdict.requested, self.verdict.sender_optout = [], True
        return self.person()

    def person(self) -> list[dict[str, Any]]:
        """The sender is opted out at once when the request is about them; an address
        written in the text only ever gets a confirmation mail (a stranger's word changes no
        one else's state), and a request about other addresses only leaves the sender
        alone."""
        row, verdict, batch = self.row, self.verdict, self.batch
        sender = _normal(verdict.from_addr)
        if sender is None:
            return self.review("none: invalid From address")
        row.action = ""  # the rest is appended below; done() puts the opt-out's outcome first

        def done(result: OptOutResult) -> None:
            row.action = (
                ("unsubscribed sender" if result.subscriber_id else "suppressed sender")
                + ("" if result.changed else " (already)")
                + row.action
            )

        if verdict.sender_optout:
            batch.add(
                OptOutRequest(
                    address=sender, scope=Scope.ALL, channel=Channel.EMAIL, evidence=self.evidence
                ),
                done,
            )
        mails: list[dict[str, Any]] = []
        pending: list[str] = []
        for address in verdict.requested:
            normal = _normal(address)
            if normal is None or normal == sender:
                continue
            sub = batch.by_email(normal)
            if (
                sub is None
                or sub.status != SubscriberStatus.ACTIVE
                or batch.opting_out(sub, normal)
                or is_suppressed(self.session, normal)
            ):
                continue  # unknown to us or already out: nothing to ask, no mail to a stranger
            pending.append(normal)
            mails.append(
                {
                    "kind": "confirm",
                    "to": normal,
                    "index": len(pending) - 1,
                    "tag": link_tag(sub.link_secret),
                }
            )
        if pending:
            row.evidence = {**row.evidence, "pending": pending}
            row.action += f"; confirmation asked of {len(pending)} other address(es)"
        if verdict.sender_optout:
            return mails + self.ack(sender)
        if not pending:
            return self.review("none: no address written is on our list")
        row.action = row.action.removeprefix("; ") + "; sender kept"
        return mails

    def ack(self, sender: str | None = None) -> list[dict[str, Any]]:
        """An acknowledgement is due, never to automated mail, and only to a From address we
        can trust: one our MTA authenticated (DMARC pass, or an aligned DKIM pass), or the
        address one of our signed campaign Message-IDs went to, replied to. A forged From
        thus cannot make us mail a third party (the opt-out itself is still honoured at
        once). Whether it goes out is then the mail allowance's decision when it is sent (at
        most one per address per day: app/subscribers/allowance.py); the poller records
        acked_at then."""
        row, verdict = self.row, self.verdict
        sender = sender or _normal(verdict.from_addr)
        if not self.settings.ack_optouts or verdict.automated or sender is None:
            return []
        row.address_hmac = email_hmac(sender)
        trusted = _ack_trust(self.batch, verdict, sender)
        row.evidence = {**row.evidence, "ack": trusted or "withheld: sender not authenticated"}
        if trusted is None:
            return []
        return [{"kind": "ack", "to": sender}]


def _ack_trust(batch: Batch, verdict: Verdict, sender: str) -> str | None:
    """Why the sender may be mailed back, or None."""
    if verdict.auth.get("dmarc_pass"):
        return "DMARC pass"
    if verdict.auth.get("aligned_dkim_pass"):
        return "aligned DKIM pass"
    for subscriber_id in verdict.reply_subscribers:
        sub = batch.subscriber(subscriber_id)
        if sub is not None and sub.email == sender:
            return "reply to our Message-ID"
    return None
