"""The campaign state machine on its own: every move a campaign may make, and every move it
may not, written out as tables (the spec), so a change to the machine shows up here."""

from __future__ import annotations

import pytest

from app.campaigns.states import VERB_TARGET, check, sources_for
from app.errors import Conflict, InvalidTransition
from app.models import CampaignStatus as S

# from-state -> the states it may move to (no verb: what the dispatcher and the scheduler do).
ALLOWED: dict[S, set[S]] = {
    S.DRAFT: {S.SCHEDULED, S.PREPARING},
    S.SCHEDULED: {S.SCHEDULED, S.PREPARING, S.MISSED, S.CANCELLED},
    # the audience is written in the background (issue 13), then it runs
    S.PREPARING: {S.RUNNING, S.CANCELLED},
    S.RUNNING: {S.PAUSED, S.DONE, S.CANCELLED},
    S.PAUSED: {S.RUNNING, S.CANCELLED},
    S.MISSED: {S.SCHEDULED, S.PREPARING, S.CANCELLED},
    S.DONE: set(),
    S.CANCELLED: set(),
}

# a marketer's verb -> (target, the states it may be used in)
VERBS: dict[str, tuple[S, set[S]]] = {
    "schedule": (S.SCHEDULED, {S.DRAFT, S.SCHEDULED, S.MISSED}),
    # `send` starts a campaign; it never restarts a paused one (that is `resume`).
    "send": (S.PREPARING, {S.DRAFT, S.SCHEDULED, S.MISSED}),
    "pause": (S.PAUSED, {S.RUNNING}),
    # `resume` leaves only `paused`, though `running` is reachable from elsewhere too.
    "resume": (S.RUNNING, {S.PAUSED}),
    "cancel": (S.CANCELLED, {S.SCHEDULED, S.PREPARING, S.RUNNING, S.PAUSED, S.MISSED}),
}

PAIRS = [(a, b) for a in S for b in S]
VERB_CASES = [(verb, state) for verb in VERBS for state in S]


def test_the_tables_cover_every_state_and_verb() -> None:
    assert set(ALLOWED) == set(S)
    assert set(VERBS) == set(VERB_TARGET)


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_a_move_is_allowed_exactly_when_the_table_says(current: S, target: S) -> None:
    if target in ALLOWED[current]:
        check(current, target)
        assert current in sources_for(target)
    else:
        with pytest.raises(InvalidTransition, match=f"that is {current.value}$"):
            check(current, target)
        assert current not in sources_for(target)


@pytest.mark.parametrize(("verb", "current"), VERB_CASES, ids=[f"{v}@{s}" for v, s in VERB_CASES])
def test_a_verb_is_allowed_exactly_in_its_states(verb: str, current: S) -> None:
    target, allowed_in = VERBS[verb]
    assert VERB_TARGET[verb] is target
    if current in allowed_in:
        check(current, target, verb=verb)
    else:
        with pytest.raises(InvalidTransition) as refused:
            check(current, target, verb=verb)
        # The message names the verb the marketer used, not the internal target state.
        assert str(refused.value) == f"cannot {verb} a campaign that is {current.value}"
    assert set(sources_for(target, verb=verb)) == allowed_in


def test_finished_campaigns_never_move_again() -> None:
    for current in (S.DONE, S.CANCELLED):
        for target in S:
            with pytest.raises(InvalidTransition):
                check(current, target)


def test_the_stored_string_is_accepted_and_an_unknown_one_refused() -> None:
    check("draft", S.PREPARING)  # the status as a row holds it
    with pytest.raises(InvalidTransition, match="cannot move to done a campaign that is draft"):
        check("draft", S.DONE)
    with pytest.raises(ValueError, match="archived"):
        check("archived", S.RUNNING)


def test_a_refused_move_is_a_conflict() -> None:
    """web/errors.py answers a Conflict with 409: the API's contract for a refused verb."""
    assert issubclass(InvalidTransition, Conflict)
