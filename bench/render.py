"""Render micro-benchmark: µs per personalised ~15 KB message, against baselines.

    .venv/bin/python bench/render.py [--messages 5000] [--dkim]

Baselines measured in the same run: `email.message_from_bytes` of the finished message (what
merely parsing one costs), and the straightforward per-recipient pipeline (Jinja render of
layout+body, css-inline, inscriptis text, EmailMessage with headers, as_bytes) that
prepare_campaign/render_message avoid. Target: well under 300 µs per message.

With --dkim: signed messages/s per core with the cryptography signer (RSA 2048 and Ed25519),
beside the same render unsigned and the old dkimpy signer (pure-Python RSA) on the same
messages, in the same run.
"""

from __future__ import annotations

import argparse
import email
import subprocess
import sys
import tempfile
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import css_inline
import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from inscriptis import get_text
from jinja2.sandbox import ImmutableSandboxedEnvironment

from app import links
from app.i18n import SUPPORTED
from app.models import Campaign
from app.sending.dkim import Signer
from app.sending.footer import footer_words, reader_language
from app.sending.render import Recipient, prepare_campaign, render_message
from app.sending.templating import body_to_html, load_layout
from app.settings import Settings

PARAGRAPH = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis "
    "nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. "
)
BODY = (
    "# Hello {{ first_name }}!\n\nYour city: **{{ attributes.city }}**.\n\n"
    + "".join(
        f"## Section {i}\n\n{PARAGRAPH * 2}\n\n[Read more](https://example.org/a/{i})\n\n"
        for i in range(14)
    )
    + "{% if attributes.plan == 'pro' %}Thanks for being a pro.{% endif %}\n"
)


def settings(key_file: str = "") -> Settings:
    values = {
        "secret_keys": "bench-secret",
        "suppression_pepper": "p",
        "base_url": "https://news.example.org",
        "postal_address": "1 Test Street, Paris",
        "OCTOMAIL_FROM": "Octo News <news@example.org>",
        "unsubscribe_mailto": "info@example.org",
        "var_dir": tempfile.mkdtemp(),
    }
    if key_file:
        values.update(
            dkim_selector="octo", dkim_domain="example.org", dkim_private_key_file=key_file
        )
    return Settings.model_validate(values)


def recipients(n: int) -> list[Recipient]:
    """People in every language and none: each message picks its footer's words."""
    languages = (*SUPPORTED, None)
    return [
        Recipient(
            id=i,
            email=f"person{i}@example.com",
            name=f"Person Number{i}",
            attributes={"city": "Lyon", "plan": "pro" if i % 2 else "free"},
            link_secret=f"{i:032x}",
            language=languages[i % len(languages)],
        )
        for i in range(n)
    ]


def naive(campaign: Campaign, s: Settings, people: list[Recipient]) -> None:
    """The obvious per-recipient pipeline, for the ratio."""
    env = ImmutableSandboxedEnvironment(autoescape=True)
    layout, _ = load_layout("default")
    template = env.from_string(
        layout.replace("{{ content }}", body_to_html(campaign.body, "markdown"))
    )
    for person in people:
        html = template.render(
            name=person.name,
            first_name=person.name.split()[0],
            attributes=person.attributes,
            org_name=s.org_name,
            postal_address=s.postal_address,
            topics=["News"],
            unsubscribe_url=links.unsubscribe_url(person.id, 1, s, secret=person.link_secret),
            preferences_url=links.preferences_url(person.id, s, secret=person.link_secret),
            footer=footer_words(
                reader_language(person.language), org_name=s.org_name, topics=["News"]
            ),
        )
        html = css_inline.inline(html)
        msg = EmailMessage(policy=policy.SMTP)
        msg["From"], msg["To"], msg["Subject"] = s.from_address, person.email, "News"
        msg["List-Unsubscribe"] = (
            f"<{links.unsubscribe_url(person.id, 1, s, secret=person.link_secret)}>"
        )
        msg.set_content(get_text(html))
        msg.add_alternative(html, subtype="html")
        msg.as_bytes()


def per_message(fn, n: int) -> float:
    """CPU µs per message: process time, so other load on the machine does not count."""
    started = time.process_time()
    fn()
    return (time.process_time() - started) / n * 1e6


class DkimpySigner:
    """The signer Octomail used before issue 13 (dkimpy, pure-Python RSA): the baseline."""

    def __init__(self, signer: Signer, pem: bytes) -> None:
        self.selector, self.domain, self.pem = signer.selector, signer.domain, pem
        self.include_headers = list(signer.include_headers)

    def sign(self, data: bytes) -> bytes:
        return (
            dkim.sign(
                data,
                self.selector.encode(),
                self.domain.encode(),
                self.pem,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=self.include_headers,
            )
            + data
        )


def dkim_figures(campaign: Campaign, people: list[Recipient], unsigned_us: float) -> None:
    """Signed messages/s on one core: RSA 2048 and Ed25519 with cryptography, the old dkimpy
    RSA signer, all rendering the same messages; the ratio is against render alone."""
    folder = Path(tempfile.mkdtemp())
    rsa_pem = folder / "rsa.pem"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(rsa_pem), "2048"], check=True, capture_output=True
    )
    ed_pem = folder / "ed25519.pem"
    ed_pem.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    rows = []
    for label, key_file in (("RSA 2048", rsa_pem), ("Ed25519", ed_pem)):
        s = settings(str(key_file))
        prepared = prepare_campaign(campaign, settings=s, topic_names=["News"])
        rows.append((f"render + DKIM {label} (cryptography)", prepared, s, people))
    s = settings(str(rsa_pem))
    old = prepare_campaign(campaign, settings=s, topic_names=["News"])
    assert old.signer is not None
    old.signer = DkimpySigner(old.signer, rsa_pem.read_bytes())  # type: ignore[assignment]
    rows.append(("render + DKIM RSA 2048 (dkimpy, before)", old, s, people[:200]))
    print(f"render alone:                              {unsigned_us:8.1f} µs/message  "
          f"({1e6 / unsigned_us:,.0f} msg/s per core)")  # fmt: skip
    for label, prepared, s, few in rows:
        render_message(prepared, few[0], settings=s)  # warm-up
        us = per_message(
            lambda prepared=prepared, s=s, few=few: [
                render_message(prepared, p, settings=s) for p in few
            ],
            len(few),
        )
        print(
            f"{label:<42}{us:8.1f} µs/message  ({1e6 / us:,.0f} signed msg/s per core, "
            f"{unsigned_us / us:.2f} of render alone)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--dkim", action="store_true", help="also measure with DKIM (RSA 2048)")
    args = parser.parse_args()
    s = settings()
    campaign = Campaign(id=1, name="Bench", subject="News for {{ first_name }}", body=BODY)
    started = time.perf_counter()
    prepared = prepare_campaign(campaign, settings=s, topic_names=["News"])
    prepare_ms = (time.perf_counter() - started) * 1e3
    people = recipients(args.messages)
    sample = render_message(prepared, people[0], settings=s).data
    for person in people[:200]:  # warm-up
        render_message(prepared, person, settings=s)

    ours = per_message(
        lambda: [render_message(prepared, p, settings=s) for p in people], len(people)
    )
    parse = per_message(
        lambda: [email.message_from_bytes(sample, policy=policy.default) for _ in people],
        len(people),
    )
    few = people[:300]
    obvious = per_message(lambda: naive(campaign, s, few), len(few))
    print(f"message {len(sample)} bytes (HTML+text, QP), prepare_campaign {prepare_ms:.1f} ms")
    print("(CPU time of this process per message)")
    print(
        f"render_message:                    {ours:8.1f} µs/message  "
        f"({1e6 / ours:,.0f} msg/s on one core)"
    )
    print(
        f"baseline email.message_from_bytes: {parse:8.1f} µs/message  "
        f"ratio render/parse: {ours / parse:.2f}"
    )
    print(
        f"baseline naive per-recipient:      {obvious:8.1f} µs/message  "
        f"speed-up: {obvious / ours:.0f}x"
    )
    if args.dkim:
        dkim_figures(campaign, people[: min(len(people), 1000)], ours)


if __name__ == "__main__":
    main()
