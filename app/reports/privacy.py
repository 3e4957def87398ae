"""What a shared report may show: aggregates only, and no group so small that it points at
a person. Groups of fewer than OCTOMAIL_REPORT_MIN_GROUP people are merged into "other"
(and "other" itself is dropped when it is still too small to show)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

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


def small_to_zero(value: int, minimum: int) -> int | None:
    """A single count shown to a stakeholder: None ("fewer than N") below the minimum,
    except zero, which names nobody."""
    return value if value == 0 or value >= minimum else None
