"""The campaign state machine: the only transitions a campaign may take."""

from __future__ import annotations

from app.errors import InvalidTransition
from app.models import CampaignStatus as S

# from-state -> the states it may move to. Anything else is a 409.
TRANSITIONS: dict[S, frozenset[S]] = {
    S.DRAFT: frozenset({S.SCHEDULED, S.PREPARING}),
    S.SCHEDULED: frozenset({S.SCHEDULED, S.PREPARING, S.MISSED, S.CANCELLED}),
    # Started: its audience is being written in the background, then it runs. No pause
    # before there is anything to pause; a cancel keeps no rows.
    S.PREPARING: frozenset({S.RUNNING, S.CANCELLED}),
    S.RUNNING: frozenset({S.PAUSED, S.DONE, S.CANCELLED}),
    S.PAUSED: frozenset({S.RUNNING, S.CANCELLED}),
    # A missed campaign waits for a marketer: send it now, reschedule it, or cancel it.
    S.MISSED: frozenset({S.SCHEDULED, S.PREPARING, S.CANCELLED}),
    S.DONE: frozenset(),
    S.CANCELLED: frozenset(),
}

# What a marketer's verb means as a transition (for messages and the API).
VERB_TARGET = {
    "schedule": S.SCHEDULED,
    "send": S.PREPARING,
    "pause": S.PAUSED,
    "resume": S.RUNNING,
    "cancel": S.CANCELLED,
}


def sources_for(target: S, *, verb: str | None = None) -> tuple[S, ...]:
    """Every state from which `target` is reachable (for compare-and-set UPDATEs).

    `resume` only leaves `paused` and `send` never leaves `paused`, so the same target can
    have different sources depending on the verb.
    """
    if verb == "resume":
        return (S.PAUSED,)
    sources = tuple(s for s, targets in TRANSITIONS.items() if target in targets)
    if verb == "send":
        return tuple(s for s in sources if s is not S.PAUSED)
    return sources


def check(current: S | str, target: S, *, verb: str | None = None) -> None:
    """Raise InvalidTransition (409) unless current -> target is allowed for this verb."""
    current = S(current)
    if current not in sources_for(target, verb=verb):
        action = verb or f"move to {target.value}"
        raise InvalidTransition(f"cannot {action} a campaign that is {current.value}")
