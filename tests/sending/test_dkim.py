"""DKIM: the rendered bytes verify with a stub DNS; altering List-Unsubscribe-Post breaks it."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import dkim
import pytest

from app.errors import ConfigurationError
from app.models import Campaign
from app.sending.dkim import Signer
from app.sending.render import Recipient, prepare_campaign, render_message
from app.settings import Settings


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A fresh 2048-bit key (openssl CLI) and its DKIM TXT record."""
    directory = tmp_path_factory.mktemp("dkim")
    key = directory / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    return key, record


def stub_dns(record: bytes):  # dkimpy's dnsfunc signature
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"octo._domainkey.example.org." else None

    return lookup


def signed_message(settings: Settings, key: Path) -> bytes:
    signing = settings.model_copy(
        update={
            "dkim_selector": "octo",
            "dkim_domain": "example.org",
            "dkim_private_key_file": str(key),
        }
    )
    campaign = Campaign(
        id=3,
        name="n",
        subject="Bonjour {{ first_name }} ✓",
        body="Hi **{{ name }}**",
        body_format="markdown",
    )
    prepared = prepare_campaign(campaign, settings=signing, topic_names=["News"])
    return render_message(
        prepared, Recipient(id=9, email="zoe@example.com", name="Zoë"), settings=signing
    ).data


def test_signature_verifies_and_covers_unsubscribe_headers(
    render_settings: Settings, rsa_key: tuple[Path, bytes]
) -> None:
    key, record = rsa_key
    data = signed_message(render_settings, key)
    assert data.startswith(b"DKIM-Signature:")
    assert dkim.verify(data, dnsfunc=stub_dns(record))
    signature = data.split(b"\r\n\r\n", 1)[0].decode()
    signed = re.search(r"h=([^;]+);", re.sub(r"\s+", "", signature))
    assert signed is not None
    names = {h.lower() for h in signed.group(1).split(":")}
    assert {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "list-id",
        "mime-version",
        "content-type",
    } <= names


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            b"List-Unsubscribe-Post: List-Unsubscribe=Nope",
        ),
        (
            b"List-Unsubscribe: <https://news.example.org/u/",
            b"List-Unsubscribe: <https://evil.test/u/",
        ),
        (b"<strong>", b"<em>"),  # the body
    ],
)
def test_tampering_breaks_the_signature(
    render_settings: Settings, rsa_key: tuple[Path, bytes], old: bytes, new: bytes
) -> None:
    key, record = rsa_key
    data = signed_message(render_settings, key)
    assert old in data
    assert not dkim.verify(data.replace(old, new, 1), dnsfunc=stub_dns(record))


def test_signer_settings(render_settings: Settings, tmp_path: Path) -> None:
    assert Signer.from_settings(render_settings) is None
    partial = render_settings.model_copy(update={"dkim_selector": "octo"})
    with pytest.raises(ConfigurationError):
        Signer.from_settings(partial)
    missing = render_settings.model_copy(
        update={
            "dkim_selector": "octo",
            "dkim_domain": "example.org",
            "dkim_private_key_file": str(tmp_path / "nope.pem"),
        }
    )
    with pytest.raises(ConfigurationError):
        Signer.from_settings(missing)
    (tmp_path / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nsecret\n")
    signer = Signer.from_settings(
        missing.model_copy(update={"dkim_private_key_file": str(tmp_path / "key.pem")})
    )
    assert signer is not None
    assert "secret" not in repr(signer)
