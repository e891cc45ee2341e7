"""Progress on stderr: a tqdm bar for people, or JSON lines for the app's background jobs.

`--progress jsonl` prints one object per line, e.g.
    {"event": "progress", "done": 200, "total": 1000, "loss": 0.0412}
    {"event": "done", "done": 1000, "total": 1000, ...}
"""

from __future__ import annotations

import json
import sys
from typing import Any, Literal, Protocol

from tqdm import tqdm

ProgressKind = Literal["tqdm", "jsonl"]


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

    def _emit(self, event: str, fields: dict[str, Any]) -> None:
        record = {"event": event, "done": self.done, "total": self.total, "unit": self.unit}
        print(json.dumps({**record, **fields}), file=sys.stderr, flush=True)

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
