"""The few words the campaign pages show about time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def zone_of(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def in_words(moment: datetime, zone_name: str, now: datetime) -> str:
    """ "Tue 09:00 Europe/Paris, in 3 h" (or "3 h ago"): a stored naive-UTC time in the
    marketer's zone, with the day, the zone's name and how far away it is."""
    zone = zone_of(zone_name)
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    local = aware.astimezone(zone)
    reference = now.replace(tzinfo=UTC) if now.tzinfo is None else now
    day = f"{local:%a %d %b}" if abs((aware - reference).days) >= 6 else f"{local:%a}"
    return f"{day} {local:%H:%M} {zone.key}, {_distance((aware - reference).total_seconds())}"


def _distance(seconds: float) -> str:
    ahead = seconds >= 0
    left = abs(seconds)
    if left < 60:
        amount = "now" if left < 5 else f"{int(left)} s"
    elif left < 3600:
        amount = f"{round(left / 60)} min"
    elif left < 2 * 86400:
        amount = f"{left / 3600:.0f} h" if left >= 3 * 3600 else f"{left / 3600:.1f} h"
    else:
        amount = f"{round(left / 86400)} days"
    if amount == "now":
        return "now"
    return f"in {amount}" if ahead else f"{amount} ago"
