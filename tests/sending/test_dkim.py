"""DKIM: the rendered bytes verify with dkimpy's verifier and a stub DNS, for RSA and Ed25519
(RFC 8463), relaxed/relaxed; altering List-Unsubscribe-Post or adding a header breaks it."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.errors import ConfigurationError
from app.models import Campaign
from app.sending.dkim import Signer, relaxed_body, relaxed_header
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


@pytest.fixture(scope="module")
def ed25519_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A fresh Ed25519 key (PEM PKCS#8) and its RFC 8463 TXT record (the raw public key)."""
    key = Ed25519PrivateKey.generate()
    path = tmp_path_factory.mktemp("dkim-ed") / "ed25519.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return path, b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public)


@pytest.fixture(params=["rsa", "ed25519"])
def any_key(
    request: pytest.FixtureRequest,
    rsa_key: tuple[Path, bytes],
    ed25519_key: tuple[Path, bytes],
) -> tuple[Path, bytes]:
    return rsa_key if request.param == "rsa" else ed25519_key


def stub_dns(record: bytes):  # dkimpy's dnsfunc signature
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"octo._domainkey.example.org." else None

    return lookup


def signed_message(settings: Settings, key: Path, email: str = "zoe@example.com") -> bytes:
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
    return render_message(prepared, Recipient(id=9, email=email, name="Zoë"), settings=signing).data


def test_signature_verifies_and_covers_unsubscribe_headers(
    render_settings: Settings, any_key: tuple[Path, bytes]
) -> None:
    key, record = any_key
    data = signed_message(render_settings, key)
    assert data.startswith(b"DKIM-Signature:")
    assert dkim.verify(data, dnsfunc=stub_dns(record))
    algorithm = b"ed25519-sha256" if b"ed25519" in record else b"rsa-sha256"
    assert b"a=" + algorithm + b"; c=relaxed/relaxed;" in data
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
    render_settings: Settings, any_key: tuple[Path, bytes], old: bytes, new: bytes
) -> None:
    key, record = any_key
    data = signed_message(render_settings, key)
    assert old in data
    assert not dkim.verify(data.replace(old, new, 1), dnsfunc=stub_dns(record))


def test_a_header_added_later_breaks_the_signature(
    render_settings: Settings, any_key: tuple[Path, bytes]
) -> None:
    """Every listed name is in h= even when absent, so a relay cannot add a Reply-To."""
    key, record = any_key
    data = signed_message(render_settings, key)
    assert b"\r\nReply-To:" not in data
    assert not dkim.verify(b"Reply-To: evil@evil.test\r\n" + data, dnsfunc=stub_dns(record))


def test_an_smtputf8_message_verifies(
    render_settings: Settings, any_key: tuple[Path, bytes]
) -> None:
    """RFC 6532: the To header holds raw UTF-8; the signature covers those bytes."""
    key, record = any_key
    data = signed_message(render_settings, key, email="zoë@exämple.com")
    assert "To: =?utf-8?b?Wm/Dqw==?= <zoë@exämple.com>\r\n".encode() in data
    assert dkim.verify(data, dnsfunc=stub_dns(record))
    assert not dkim.verify(data.replace("zoë@".encode(), b"zoe@", 1), dnsfunc=stub_dns(record))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\r\n\r\n",
        b"a  b\t\tc \r\n",
        b"line\r\n \t\r\n\r\n",
        b"no final newline  ",
        b" lead\r\n\t tab\r\nx\r\n\r\n\r\n",
    ],
)
def test_body_canonicalisation_agrees_with_dkimpy(body: bytes) -> None:
    assert relaxed_body(body) == dkim.RelaxedCanonicalization.canonicalize_body(body)


def test_header_canonicalisation_agrees_with_dkimpy() -> None:
    fields = [(b"Subject", b"  Hello \t world\r\n  again  "), (b"X-A ", b"b\r\n\tc")]
    ours = [relaxed_header(n, v) for n, v in fields]
    theirs = dkim.RelaxedCanonicalization.canonicalize_headers(fields)
    assert ours == [n + b":" + v.rstrip(b"\r\n") for n, v in theirs]


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
    with pytest.raises(ConfigurationError, match="not an RSA or Ed25519 private key"):
        Signer.from_settings(
            missing.model_copy(update={"dkim_private_key_file": str(tmp_path / "key.pem")})
        )


def test_a_signer_never_shows_its_key(render_settings: Settings, any_key) -> None:
    key, _ = any_key
    signer = Signer.from_settings(
        render_settings.model_copy(
            update={
                "dkim_selector": "octo",
                "dkim_domain": "example.org",
                "dkim_private_key_file": str(key),
            }
        )
    )
    assert signer is not None
    assert "key" not in repr(signer)
    assert "PRIVATE" not in repr(signer)
