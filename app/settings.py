"""The one Settings object (OCTOMAIL_* environment variables); nothing is built at import."""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import timedelta
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.files import private_dir

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse '90s', '15m', '1h', '2d' or plain seconds into a timedelta."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float):
        return timedelta(seconds=text)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 1h, 2d)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


class Settings(BaseSettings):
    """Every knob of Octomail; read from the environment with the OCTOMAIL_ prefix."""

    model_config = SettingsConfigDict(env_prefix="OCTOMAIL_", extra="ignore")

    var_dir: Path = Path("var")
    database_url: str = ""
    base_url: str = "http://127.0.0.1:8000"
    secret_keys: str = ""
    suppression_pepper: str = ""
    postal_address: str = ""
    org_name: str = "Octomail"
    from_: str = Field("", validation_alias="OCTOMAIL_FROM")
    smtp_urls: str = ""
    mail_catcher_port: int = 2525
    """Port of the embedded mail catcher used when OCTOMAIL_SMTP_URLS is empty."""
    smtp_pool_size: int = 8
    smtp_rate_per_second: float = 0.0
    smtp_rate_per_hour: float = 0.0
    unsubscribe_mailto: str = ""
    imap_url: str = ""
    missed_grace: timedelta = timedelta(hours=1)
    send_lease: timedelta = timedelta(seconds=60)
    """How long a worker owns the sends it claimed; an expired lease returns them to the queue."""
    send_batch_size: int = 500
    send_retry_max_age: timedelta = timedelta(days=3)
    """How long a recipient throttled with 4xx replies is retried before it is marked failed."""
    # Issue 14 (a killed worker doubles only what it had on the wire): results are recorded
    # when 64 wait or the oldest has waited this long, whichever comes first.
    send_record_interval: float = Field(0.05, gt=0, le=5)
    """Seconds a send result may wait before it is recorded."""
    confirm_max_age: timedelta = timedelta(days=7)
    policy_version: str = "2026-11"
    signup_rate_limit: int = 10
    """Sign-ups per minute per IPv4 address or IPv6 /64 on the public form and endpoint."""
    report_min_group: int = Field(5, ge=1, le=1000)
    """Shared reports merge any group of fewer people than this into "other" (issue 12)."""
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_private_key_file: str = ""
    soft_bounce_limit: int = 3
    soft_bounce_window: timedelta = timedelta(days=14)
    ack_optouts: bool = True
    poll_interval: timedelta = timedelta(seconds=30)
    inbound_batch_size: int = 200
    inbound_lease_ttl: timedelta = timedelta(seconds=30)
    inbound_max_bytes: int = 25_000_000
    """Larger inbound messages go to Review unread."""
    inbound_retention: timedelta = timedelta(days=90)
    """Inbound mail's words, addresses and our filed copy are deleted this long after it was
    handled (after it was resolved, for mail a person had to look at); the verdict, the
    action and the message's hash stay."""
    # Issue 9 part 3 (free-text reader): the authserv-id of our own receiving MTA; only the
    # topmost Authentication-Results header it wrote is believed. Empty = none trusted.
    inbound_authserv_id: str = ""
    # Issue 9 part 4 (mail allowance): at most this many transactional mails (confirmations,
    # acknowledgements, exports) per hour in all, on top of the per-address limits; 0 = none.
    transactional_mail_per_hour: int = 500
    # Issue 9 part 2 (reports from outside act only on mail we sent)
    bounce_address: str = ""
    """Mailbox bounces reach; campaign mail is sent from signed +sub-addresses of it (VERP).
    Empty: OCTOMAIL_UNSUBSCRIBE_MAILTO."""
    embedded_worker: bool = True
    embedded_poller: bool = True
    embedded_scheduler: bool = True

    # Issue 9, templates (parts 5 and 6): bounded rendering and campaign layouts.
    render_timeout: float = Field(10.0, gt=0)
    """Seconds a preview or test send (compile and render) may take before it answers 422."""
    email_layout_dir: str = ""
    """An extra folder of campaign layouts (NAME.html, optional NAME.txt), searched first."""

    # Issue 9 part 7/8 (input): request limits and what is served publicly.
    max_body_bytes: int = 2_000_000
    """Largest request body on any route (413 beyond), counted as it streams in; room for
    the largest campaign body (1,000,000 characters)."""
    max_upload_bytes: int = 200_000_000
    """Largest CSV upload to POST /api/v1/subscribers/import (about two million rows)."""
    public_docs: bool = False
    """Serve /docs, /redoc and /openapi.json; off by default (they answer 404)."""

    # Issue 9, old links never reach a new person: the mailed personal-data download link.
    export_link_max_age: timedelta = timedelta(hours=24)
    """Lifetime of the download link that "email my data" sends to the person's address."""

    # Issue 11, the marketer web app: browser sessions and the sign-in lock-out.
    admin_session_idle: timedelta = timedelta(hours=2)
    """A signed-in browser left alone this long is signed out."""
    admin_session_max_age: timedelta = timedelta(hours=12)
    """A session ends this long after sign-in, however active (then sign in again)."""
    admin_lockout_failures: int = Field(5, ge=1)
    """Failed sign-ins to one account within the window that lock it out for the window."""
    admin_lockout_client_failures: int = Field(20, ge=1)
    """Failed sign-ins from one client (IPv4 address or IPv6 /64) within the window that
    lock that client out: one guesser trying many accounts."""
    admin_lockout_window: timedelta = timedelta(minutes=15)
    # Issue 15, subscribers' own sign-in on /account.
    account_link_max_age: timedelta = timedelta(minutes=30)
    """Lifetime of a mailed /account sign-in link (it also works only once)."""
    account_rate_limit: int = Field(5, ge=1)
    """Sign-in link requests and password attempts per minute per IPv4 address or IPv6 /64."""
    preflight_private_links: bool = False
    """Let the preflight's link check reach private and loopback addresses (tests, an
    intranet newsletter); off, such links are reported as not checked."""

    # Issue 12, provider webhooks (POST /webhooks/{provider}): a provider whose setting is
    # empty is not configured, and its URL answers 404.
    webhook_ses_topic_arns: str = ""
    """Comma-separated SNS topic ARNs whose signed messages are accepted (SES via SNS)."""
    webhook_sendgrid_public_key: str = ""
    """The Signed Event Webhook's verification key: base64 DER (SubjectPublicKeyInfo)."""
    webhook_postmark_credentials: str = ""
    """`user:password` of the HTTP Basic auth written into Postmark's webhook URL."""
    webhook_postmark_ips: str = ""
    """Optional comma-separated addresses or networks Postmark calls from (others: 401)."""
    webhook_mailgun_signing_key: str = ""
    """Mailgun's HTTP webhook signing key."""
    webhook_max_age: timedelta = timedelta(minutes=15)
    """Signed timestamps (Mailgun, SendGrid) older or further ahead than this are refused."""
    webhook_rate_limit: int = Field(1200, ge=1)
    """Calls per minute per client address (IPv4, IPv6 /64) to /webhooks/*; 429 beyond."""

    # Issue 12, measurement: people who never chose about tracking follow this default.
    tracking_default: Literal["on", "off"] = "off"
    """Count opens and clicks of people who never chose: `off` (the default) unless the
    operator's legal basis allows it. A person's own yes or no always wins."""

    # Issue 13, observability (app/observability/, app/web/observe.py).
    metrics_token: str = ""
    """Bearer token GET /metrics requires; empty: /metrics answers loopback clients only."""
    log_format: str = Field("text", pattern="^(text|json)$")
    """`text` or `json` (one object a line) for every process's logs."""
    log_level: str = Field("INFO", pattern="^(?i:debug|info|warning|error)$")
    """Level of Octomail's own loggers (third-party ones stay at WARNING)."""

    @field_validator("export_link_max_age", mode="before")
    @classmethod
    def _export_link_duration(cls, value: Any) -> timedelta:  # the raw input: mode=before
        return parse_duration(value)

    @field_validator(
        "missed_grace",
        "confirm_max_age",
        "soft_bounce_window",
        "poll_interval",
        "send_lease",
        "send_retry_max_age",
        "inbound_lease_ttl",
        "inbound_retention",
        "account_link_max_age",
        "admin_session_idle",
        "admin_session_max_age",
        "admin_lockout_window",
        "webhook_max_age",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> timedelta:  # the raw input: mode=before
        return parse_duration(value)

    @field_validator("from_", "org_name")
    @classmethod
    def _one_line(cls, value: str) -> str:
        # Both go into the From header: the From that is checked must be the From that is
        # sent, and a control character or a Unicode line separator is read differently by
        # the parsers on the way out.
        if _CONTROL.search(value):
            raise ValueError("must not contain control or line-separator characters")
        return value.strip()

    @property
    def from_address(self) -> str:
        return self.from_ or "newsletter@localhost"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'octomail.db'}"

    @cached_property
    def signing_keys(self) -> list[str]:
        """Keys newest first: the first signs, every one verifies."""
        keys = [k.strip() for k in self.secret_keys.split(",") if k.strip()]
        return keys or [self._generated_secrets()["secret_key"]]

    @cached_property
    def pepper(self) -> bytes:
        """Server pepper for suppression hashes; must never change once addresses are hashed."""
        value = self.suppression_pepper or self._generated_secrets()["suppression_pepper"]
        return value.encode()

    @property
    def smtp_url_list(self) -> list[str]:
        return [u.strip() for u in self.smtp_urls.split(",") if u.strip()]

    def _generated_secrets(self) -> dict[str, str]:
        """Secrets generated once into var/secrets.json when none are configured."""
        path = self.var_dir / "secrets.json"
        if path.exists():
            return json.loads(path.read_text())
        private_dir(self.var_dir)
        data = {
            "secret_key": secrets.token_urlsafe(32),
            "suppression_pepper": secrets.token_urlsafe(32),
        }
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        try:
            os.link(tmp, path)  # first writer wins when several processes start at once
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return json.loads(path.read_text())


@lru_cache
def get_settings() -> Settings:
    return Settings()
