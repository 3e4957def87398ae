"""Messy real-world bounces are read: every permanent failure flufl.bounce finds in its own
test corpus (tests/inbound/fixtures/flufl_bounce, see its README) is a hard bounce for us.

This checks the reading only: these bounces were not sent by us, so nothing ties them to our
mail and the poller would file them in Review untouched (tests/inbound/test_bounce_ties.py
checks that rule with the same reader)."""

from __future__ import annotations

import email
from pathlib import Path

from flufl.bounce import all_failures

from app.inbound.classify import Context, Kind, classify

CORPUS = Path(__file__).parent / "fixtures" / "flufl_bounce"


def _flufl_permanent(raw: bytes) -> set[str]:
    """What flufl.bounce detects, parsed as its own tests parse (email's default compat32)."""
    _temporary, permanent = all_failures(email.message_from_bytes(raw))
    return {a.decode("ascii", "replace").strip("<>").lower() for a in permanent}


def test_every_permanent_failure_flufl_finds_is_read_as_a_hard_bounce() -> None:
    files = sorted(CORPUS.glob("*.txt"))
    assert len(files) == 101
    expected = read = 0
    missed: list[str] = []
    for path in files:
        raw = path.read_bytes()
        permanent = _flufl_permanent(raw)
        assert permanent, f"{path.name}: not a permanent failure for flufl.bounce"
        verdict = classify(raw, Context())
        got = set(verdict.recipients) if verdict.kind is Kind.HARD_BOUNCE else set()
        expected += len(permanent)
        read += len(permanent & got)
        if permanent - got:
            missed.append(
                f"{path.name}: {sorted(permanent - got)} -> {verdict.kind.value} ({verdict.reason})"
            )
    print(
        f"\nflufl.bounce corpus: {read}/{expected} permanent-failure addresses read as hard "
        f"bounces ({read / expected:.0%}) in {len(files)} messages"
    )
    assert not missed, "\n".join(missed)


def test_malformed_bounces_are_read_leniently_and_say_so() -> None:
    # The returned message was replaced by "Message removed" (no header/body separator).
    verdict = classify((CORPUS / "postfix_01.txt").read_bytes(), Context())
    assert verdict.kind is Kind.HARD_BOUNCE
    assert verdict.recipients == ["xxxxx@local.ie"]
    assert verdict.evidence["malformed_mime"] == ["MissingHeaderBodySeparatorDefect"]
    assert "read leniently" in verdict.reason
    # A truncated report (no close boundary) whose Action says "failure".
    verdict = classify((CORPUS / "dsn_03.txt").read_bytes(), Context())
    assert verdict.kind is Kind.HARD_BOUNCE
    assert verdict.recipients == ["userx@example.be"]


def test_a_malformed_message_from_a_person_still_goes_to_review() -> None:
    from tests.support.inbound import load_fixture

    verdict = classify(load_fixture("malformed_mime"), Context())
    assert verdict.kind is Kind.UNREADABLE
    assert verdict.folder == "Review"
    assert verdict.reason.startswith("malformed MIME")


def test_an_mbox_separator_line_does_not_hide_the_headers() -> None:
    from tests.support.inbound import load_fixture

    bounce = load_fixture("dsn_postfix_hard")
    for line in (
        b"From MAILER-DAEMON Mon Nov  2 10:00:31 2026\n",
        b">From MAILER-DAEMON Mon Nov  2 10:00:31 2026\n",
    ):  # as mboxo escapes it
        verdict = classify(line + bounce, Context())
        assert verdict.kind is Kind.HARD_BOUNCE, (line, verdict.reason)
        assert verdict.recipients == ["mia@example.com"]
