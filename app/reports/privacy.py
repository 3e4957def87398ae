"""What a shared report may show: aggregates only, and no group so small that it points at
a person. Groups of fewer than OCTOMAIL_REPORT_MIN_GROUP people are merged into "other",
and any count still under the threshold (1 to N-1, "other" included) is shown as "fewer
than N" (`shown_count`), never as its value."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from app.reports.growth import GrowthItem
from app.tracking.summary import LinkCount

OTHER = "other"

T = TypeVar("T")


@dataclass(frozen=True)
class Merged(Generic[T]):
    shown: list[T]
    other: dict[str, int]
    """Summed counts of the merged groups (empty when nothing was merged)."""
    merged: int
    """How many groups went into "other"."""


def merge_small(
    items: Sequence[T],
    *,
    size: Callable[[T], int],
    counts: Callable[[T], dict[str, int]],
    minimum: int,
) -> Merged[T]:
    """Keep the groups of at least `minimum` (by `size`), sum the others' `counts`."""
    shown = [i for i in items if size(i) >= minimum]
    small = [i for i in items if size(i) < minimum]
    other: dict[str, int] = {}
    for item in small:
        for name, value in counts(item).items():
            other[name] = other.get(name, 0) + value
    return Merged(shown, other, len(small))


def shown_count(value: int, minimum: int) -> int | None:
    """A count as a stakeholder may see it: None ("fewer than N") from 1 to minimum - 1;
    zero names nobody."""
    return value if value == 0 or value >= minimum else None


@dataclass(frozen=True)
class SharedLink:
    url: str
    unique: int
    total: int


def shared_links(links: Sequence[LinkCount], minimum: int) -> list[SharedLink]:
    """Links clicked by at least `minimum` people, then the rest summed as one "other"
    row (a link few people clicked can be as telling as a name)."""
    merged = merge_small(
        links,
        size=lambda k: k.unique,
        counts=lambda k: {"unique": k.unique, "total": k.total},
        minimum=minimum,
    )
    shown = [SharedLink(k.url, k.unique, k.total) for k in merged.shown]
    if merged.merged:
        shown.append(SharedLink(OTHER, merged.other["unique"], merged.other["total"]))
    return shown


def shared_channels(by_channel: dict[str, int], minimum: int) -> dict[str, int]:
    """Opt-outs by channel with the channels of fewer than `minimum` people (but more
    than none) summed into "other"."""
    shown = {k: v for k, v in by_channel.items() if v == 0 or v >= minimum}
    small = sum(v for v in by_channel.values() if 0 < v < minimum)
    if small:
        shown[OTHER] = small
    return shown


def shared_growth(items: Sequence[GrowthItem], minimum: int) -> list[GrowthItem]:
    """Groups with at least `minimum` sign-ups or opt-outs, then one "other" row."""
    merged = merge_small(
        items,
        size=lambda i: max(i.signups, i.unsubscribed),
        counts=lambda i: {
            "signups": i.signups,
            "confirmed": i.confirmed,
            "unsubscribed": i.unsubscribed,
        },
        minimum=minimum,
    )
    shown = list(merged.shown)
    if merged.merged:
        o = merged.other
        shown.append(GrowthItem(OTHER, o["signups"], o["confirmed"], o["unsubscribed"]))
    return shown
