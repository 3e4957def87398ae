"""Address normalisation: the fast path never accepts what email-validator rejects."""

import random
import string

import pytest
from email_validator import EmailNotValidError, validate_email

from app.errors import InvalidInput
from app.mail.addresses import email_hmac, mask_email, normalize_email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Jane.Doe@Example.ORG ", "jane.doe@example.org"),
        ("x+tag@sub.example.com", "x+tag@sub.example.com"),
        ("ü@exämple.de", "ü@exämple.de"),
    ],
)
def test_normalizes(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "plain",
        "a..b@example.com",
        "a@localhost",
        "x@foo.test",
        "a@b",
        "a@-x.com",
        "a" * 250 + "@example.com",
    ],
)
def test_rejects(raw):
    with pytest.raises(InvalidInput):
        normalize_email(raw)


def test_fast_path_is_a_subset_of_email_validator():
    rng = random.Random(8058)
    alphabet = string.ascii_letters + string.digits + ".-_+@!#'" + "é"
    checked = 0
    for _ in range(4000):
        candidate = "".join(rng.choice(alphabet) for _ in range(rng.randint(3, 24)))
        if rng.random() < 0.7:
            candidate = (
                candidate.replace("@", "")
                + "@"
                + rng.choice(
                    ["example.com", "ex-ample.org", "a.b.c.de", "x.y", "1.2", "x.local", "d.test"]
                )
            )
        try:
            ours = normalize_email(candidate)
        except InvalidInput:
            continue
        try:
            theirs = validate_email(candidate, check_deliverability=False).normalized.lower()
        except EmailNotValidError as exc:  # pragma: no cover - this is the failure we look for
            pytest.fail(f"fast path accepted {candidate!r} which email-validator rejects: {exc}")
        assert ours == theirs
        checked += 1
    assert checked > 500


def test_hmac_is_keyed_and_case_insensitive(env):
    assert email_hmac("A@Example.org") == email_hmac("a@example.org")
    assert len(email_hmac("a@example.org")) == 64


def test_mask():
    assert mask_email("jane@example.com") == "j***@example.com"


@pytest.mark.parametrize("pepper", [b"", b"short", b"k" * 64, b"long" * 40])
def test_keyed_hasher_is_hmac_sha256(pepper):
    """Suppression entries written before must keep matching: same bytes as the hmac module."""
    import hashlib
    import hmac

    from app.mail.addresses import keyed_hasher

    hasher = keyed_hasher(pepper)
    for address in ["ann@example.org", "ü@exämple.de", "x" * 300 + "@example.com"]:
        assert hasher(address) == hmac.new(pepper, address.encode(), hashlib.sha256).hexdigest()
