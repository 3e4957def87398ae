"""What sending asks of the other domains, passed in rather than imported.

The way listmonk's bounce package takes a callback and never imports subscribers: the
worker needs the audience rules at claim time, the one opt-out for a hard bounce, a
campaign's state changes and the background preparation of a started campaign, but
`app.sending` imports neither `app.campaigns` nor `app.subscribers`. `app/compose.py` is
the one place that fills these in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Session

from app.settings import Settings


class EligibleClause(Protocol):
    """SQL truth value: this `subscriber` row may get this campaign (suppression aside)."""

    def __call__(
        self,
        campaign_id: int,
        category: str,
        attribute_filter: dict[str, Any] | None,
        *,
        postgres: bool,
        per_row: bool = False,
    ) -> sa.ColumnElement[bool]: ...


class BlockedBySuppression(Protocol):
    """The addresses (of those given) a campaign of `category` must not reach."""

    def __call__(
        self, conn: sa.Connection, emails: Iterable[str], category: str, settings: Settings
    ) -> set[str]: ...


class OptOutBounce(Protocol):
    """The one opt-out, for a recipient address the SMTP server refused for good."""

    def __call__(
        self,
        session: Session,
        *,
        subscriber_id: int,
        campaign_id: int | None,
        details: dict[str, Any],
    ) -> None: ...


@dataclass(frozen=True)
class SendingHooks:
    eligible_clause: EligibleClause
    blocked_by_suppression: BlockedBySuppression
    opt_out_bounce: OptOutBounce
    finish_complete: Callable[[sa.Connection, int], Sequence[int]]
    """Mark the campaign done when no row is left; returns the ids finished."""
    pause: Callable[[Session, int], object]
    """Pause a campaign that cannot be rendered (raises OctomailError when it cannot)."""
    prepare_pending: Callable[[Settings], Sequence[int]]
    """Write the audience of campaigns started but not yet prepared (`preparing`), moving
    them to running; safe to call from any number of processes at once."""
