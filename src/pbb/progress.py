"""The one progress bar of the lab: building, training, evaluating and importing all show it.

In a terminal it is a rich bar with the count, the elapsed time and an ETA (and an
optional metric, such as the latest loss); in a log (no terminal) it prints a line
every 30 s and a final one, so a long job written to a file still says where it is.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


class ProgressBar:
    """`with ProgressBar("eval final", total=n) as bar: bar.advance(k)`; `enabled=False` shows nothing."""

    LOG_EVERY_S = 30.0

    def __init__(self, description: str, total: int, completed: int = 0, *, enabled: bool = True) -> None:
        self.description, self.total, self.done = description, total, completed
        self.start, self.last_log = time.perf_counter(), time.perf_counter()
        self.enabled = enabled
        self.metric = ""
        self._base = completed
        self._final_logged = completed == total  # nothing to report for work already done
        self._bar: Progress | None = None
        if enabled and console.is_terminal:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[metric]}"),
                       TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
            self._bar = Progress(*columns, console=console)
            self._task = self._bar.add_task(description, total=total, completed=completed, metric="")

    def __enter__(self) -> ProgressBar:
        if self._bar:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar:
            self._bar.__exit__(*exc)  # type: ignore[arg-type]

    def advance(self, k: int = 1) -> None:
        self.update(self.done + k)

    def set_metric(self, text: str) -> None:
        """A short text shown beside the count (e.g. `loss 0.412`)."""
        self.metric = text
        if self._bar:
            self._bar.update(self._task, metric=text)

    def update(self, completed: int) -> None:
        self.done = min(completed, self.total)
        if not self.enabled:
            return
        if self._bar:
            self._bar.update(self._task, completed=self.done)
            return
        now = time.perf_counter()
        final = self.done == self.total and not self._final_logged
        if now - self.last_log >= self.LOG_EVERY_S and self.done < self.total or final:
            self.last_log, self._final_logged = now, self._final_logged or final
            rate = (self.done - self._base) / max(now - self.start, 1e-9)
            eta = f"{(self.total - self.done) / rate:.0f}s" if rate > 0 else "?"
            metric = f", {self.metric}" if self.metric else ""
            console.print(f"{self.description}: {self.done}/{self.total}{metric}, {now - self.start:.0f}s elapsed, ETA {eta}",
                          highlight=False)
