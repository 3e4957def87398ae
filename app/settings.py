"""The one Settings object: OCTOMAIL_* from the environment, then the config file.

The file is `octomail.env` in the working directory, or the one OCTOMAIL_CONFIG names;
environment variables override it. `serve`, workers, the poller and every command read it
the same way (`get_settings()`); nothing is built at import.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from app.errors import ConfigurationError
from app.files import private_dir

CONFIG_ENV = "OCTOMAIL_CONFIG"
CONFIG_NAME = "octomail.env"

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


def config_file() -> Path | None:
    """The config file in use: the one OCTOMAIL_CONFIG names (it must exist), else
    `octomail.env` in the working directory when there is one, else None."""
    named = os.environ.get(CONFIG_ENV, "").strip()
    if named:
        path = Path(named).expanduser()
        if not path.exists() or path.is_dir():
            raise ConfigurationError(f"{CONFIG_ENV} names {path}, which is not a file")
        return Path(os.path.abspath(path))
    local = Path.cwd() / CONFIG_NAME
    return local if local.is_file() else None


class Settings(BaseSettings):
    """Every knob of Octomail: OCTOMAIL_* environment variables over the config file."""

    model_config = SettingsConfigDict(env_prefix="OCTOMAIL_", extra="ignore")

    var_dir: Path = Path("var")
    """Relative: to the config file's folder when there is one, else the working directory;
    made absolute once, when the settings are read."""
    database_url: str = ""
    host: str = "127.0.0.1"
    """Where `octomail serve` listens (its --host overrides it for that process)."""
    port: int = Field(8000, ge=1, le=65535)
    """Where `octomail serve` listens (its --port overrides it for that process)."""
    base_url: str = ""
    """Public base URL of links; empty: http://HOST:PORT (127.0.0.1 for a wildcard host)."""
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
    account_session_idle: timedelta = timedelta(minutes=30)
    """A subscriber's signed-in browser on /account left alone this long is signed out."""
    account_session_max_age: timedelta = timedelta(days=1)
    """A subscriber's session ends this long after sign-in, however active."""
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
    tracking_rate_limit: int = Field(6000, ge=0)
    """Opens and clicks counted per minute per client (IPv4 address, IPv6 /64); past it the
    pixel and the redirect still answer, uncounted (0 = no limit)."""

    # Issue 13, observability (app/observability/, app/web/observe.py).
    metrics_token: str = ""
    """Bearer token GET /metrics requires; empty: /metrics answers loopback clients only."""
    log_format: str = Field("text", pattern="^(text|json)$")
    """`text` or `json` (one object a line) for every process's logs."""
    log_level: str = Field("INFO", pattern="^(?i:debug|info|warning|error)$")
    """Level of Octomail's own loggers (third-party ones stay at WARNING)."""

    _config_file: Path | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then the config file (no other .env file)."""
        path = config_file()
        if path is None:
            return init_settings, env_settings
        return init_settings, env_settings, DotEnvSettingsSource(settings_cls, env_file=path)

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        """Paths made absolute once (relative to the config file's folder, or the working
        directory); the base URL follows host and port unless it was set."""
        self._config_file = config_file()
        base = self._config_file.parent if self._config_file else Path.cwd()
        if not self.var_dir.is_absolute():
            self.var_dir = Path(os.path.abspath(base / self.var_dir.expanduser()))
        for name in ("dkim_private_key_file", "email_layout_dir"):
            value = getattr(self, name)
            if value and not Path(value).expanduser().is_absolute():
                setattr(self, name, os.path.abspath(base / Path(value).expanduser()))
        if not self.base_url:
            shown = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            shown = f"[{shown}]" if ":" in shown else shown
            self.base_url = f"http://{shown}:{self.port}"
        self.base_url = self.base_url.rstrip("/")
        return self

    @property
    def config_path(self) -> Path | None:
        """The config file these settings were read from (None: environment only)."""
        return self._config_file

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
        "account_session_idle",
        "account_session_max_age",
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


_SECRET_NAME = re.compile(r"secret|key|pepper|token|password|credential", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s,]*:)[^@\s,]*(@)")


@dataclass(frozen=True)
class SettingLine:
    """One effective setting for `octomail config`: its variable, shown value and source."""

    variable: str
    value: str
    source: str


def env_name(name: str) -> str:
    """The OCTOMAIL_* variable of a Settings field."""
    alias = Settings.model_fields[name].validation_alias
    return alias if isinstance(alias, str) else f"OCTOMAIL_{name.upper()}"


def is_secret(name: str) -> bool:
    """Fields whose value is never shown (keys, peppers, tokens, passwords); a path to one
    (`*_file`, `*_dir`) is not a secret."""
    return bool(_SECRET_NAME.search(name)) and not name.endswith(("_file", "_dir"))


def mask(name: str, value: object) -> str:
    """The value as `octomail config` shows it: secrets hidden, URL passwords starred."""
    text = _duration_text(value) if isinstance(value, timedelta) else str(value)
    if is_secret(name):
        return "(set, hidden)" if text else "(empty)"
    return _URL_PASSWORD.sub(r"\1***\2", text)


def _duration_text(value: timedelta) -> str:
    seconds = value.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def describe(settings: Settings) -> list[SettingLine]:
    """Every setting with its effective value (secrets masked) and where it came from:
    `env`, `file` (the config file), `default`, or how it was derived."""
    environ = EnvSettingsSource(Settings).env_vars
    path = settings.config_path
    in_file = DotEnvSettingsSource(Settings, env_file=path).env_vars if path else {}
    lines = []
    for name in Settings.model_fields:
        variable = env_name(name)
        key = variable.lower()
        if key in environ:
            source = "env"
        elif key in in_file:
            source = f"file {path}"
        else:
            source = _derived(settings, name)
        lines.append(SettingLine(variable, mask(name, getattr(settings, name)), source))
    return lines


def _derived(settings: Settings, name: str) -> str:
    if name == "base_url":
        return "default (from OCTOMAIL_HOST and OCTOMAIL_PORT)"
    if name in ("secret_keys", "suppression_pepper"):
        return f"default (generated into {settings.var_dir / 'secrets.json'} when first used)"
    if name == "database_url":
        return f"default ({settings.effective_database_url} in OCTOMAIL_VAR_DIR)"
    return "default"


_TEMPLATE = """\
# Octomail configuration: read by `octomail serve`, the workers, the poller and every
# command (OCTOMAIL_* environment variables override it). `octomail config` shows what is
# in effect and where each value came from. Keep this file private: it holds the keys.
# Every setting is in the README's configuration table.
OCTOMAIL_VAR_DIR={var_dir}
OCTOMAIL_HOST={host}
OCTOMAIL_PORT={port}
{secrets}
# Required before marketing campaigns can be sent (shown in every footer):
# OCTOMAIL_POSTAL_ADDRESS=Your organisation, 1 Street, 75001 Paris, France
# OCTOMAIL_ORG_NAME=Your organisation
# OCTOMAIL_FROM=Newsletter <newsletter@example.org>
# Your SMTP provider (empty: the local mail catcher, stored in var/mail/outbox):
# OCTOMAIL_SMTP_URLS=smtp://user:password@smtp.example.org:587?starttls=1
# OCTOMAIL_DATABASE_URL=postgresql+psycopg://octomail@localhost/octomail
"""


def init_config(settings: Settings, path: Path | None = None) -> tuple[Path, bool]:
    """Write the config file (owner-only) unless one exists: the var directory, host, port
    and the generated keys, taken from var/secrets.json when an earlier run made them (the
    suppression pepper must never change). Returns (path, created)."""
    path = path or settings.config_path or Path.cwd() / CONFIG_NAME
    if path.exists():
        return path, False
    environ = EnvSettingsSource(Settings).env_vars
    earlier = settings.var_dir / "secrets.json"
    generated = (
        json.loads(earlier.read_text())
        if earlier.exists()
        else {
            "secret_key": secrets.token_urlsafe(32),
            "suppression_pepper": secrets.token_urlsafe(32),
        }
    )
    lines = []
    for name, key in (("secret_keys", "secret_key"), ("suppression_pepper", "suppression_pepper")):
        variable = env_name(name)
        if variable.lower() in environ:
            lines.append(f"# {variable} is set in the environment")
        else:
            lines.append(f"{variable}={generated[key]}")
    text = _TEMPLATE.format(
        var_dir=settings.var_dir, host=settings.host, port=settings.port, secrets="\n".join(lines)
    )
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path, False
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return path, True
