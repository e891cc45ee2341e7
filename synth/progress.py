"""Progress on stderr: a tqdm bar for people, or JSON lines for the app's background jobs.

`--progress jsonl` prints one object per line in the contract's format
(`synth.contract.format_progress_event`), e.g.
    {"event": "progress", "done": 200, "total": 1000, "unit": "step", "loss": 0.0412}
    {"event": "done", "done": 1000, "total": 1000, "unit": "step", ...}
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

from tqdm import tqdm

from synth.contract import ProgressEvent, ProgressKind, format_progress_event


class Progress(Protocol):
    def update(self, done: int, **fields: Any) -> None: ...

    def finish(self, **fields: Any) -> None: ...


class SilentProgress:
    def update(self, done: int, **fields: Any) -> None:
        pass

    def finish(self, **fields: Any) -> None:
        pass


class JsonlProgress:
    def __init__(self, total: int, unit: str) -> None:
        self.total = total
        self.unit = unit
        self.done = 0

    def _emit(self, event: ProgressEvent, fields: dict[str, Any]) -> None:
        line = format_progress_event(event, self.done, self.total, self.unit, **fields)
        print(line, file=sys.stderr, flush=True)

    def update(self, done: int, **fields: Any) -> None:
        self.done = done
        self._emit("progress", fields)

    def finish(self, **fields: Any) -> None:
        self._emit("done", fields)


class TqdmProgress:
    def __init__(self, total: int, unit: str, description: str) -> None:
        self.bar = tqdm(total=total, unit=unit, desc=description, file=sys.stderr)

    def update(self, done: int, **fields: Any) -> None:
        self.bar.update(done - self.bar.n)
        if fields:
            self.bar.set_postfix(
                {
                    key: f"{value:.4g}" if isinstance(value, float) else value
                    for key, value in fields.items()
                },
                refresh=False,
            )

    def finish(self, **fields: Any) -> None:
        self.bar.close()


def make_progress(kind: ProgressKind, total: int, unit: str, description: str) -> Progress:
    if kind == "jsonl":
        return JsonlProgress(total, unit)
    return TqdmProgress(total, unit, description)
