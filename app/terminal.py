"""Progress bars that fit the terminal, whatever its width.

Rich crops a one-line progress table at the console width (80 columns when it cannot tell),
so a long file name or the figures after the bar were cut to "…". Here the bar alone takes
the first line, as wide as the terminal, and the words and figures go on the line below,
wrapped rather than cut when the terminal is narrow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.console import RenderableType
from rich.progress import BarColumn, Progress, Task, TaskProgressColumn
from rich.text import Text


class FittedProgress(Progress):
    """A progress bar as wide as the terminal with one wrapped line of details per task."""

    def __init__(self, details: Callable[[Task], str], *, transient: bool = False) -> None:
        super().__init__(
            BarColumn(bar_width=None), TaskProgressColumn(), expand=True, transient=transient
        )
        self.details = details

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        for task in self.tasks:
            yield Text(self.details(task), overflow="fold")


def time_left(task: Task) -> str:
    """'0:01:05 left' once Rich can estimate it; '' before."""
    seconds = task.time_remaining
    if seconds is None:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d} left"
