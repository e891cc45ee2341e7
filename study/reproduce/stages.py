"""Stages and the runner that skips the ones already done.

A stage declares its options, its inputs (digested when it is reached, as earlier stages make
them) and its outputs. The runner keeps a record of each stage in OUT/.stages/<stage>.json:
the fingerprint of its inputs and options (`fingerprints.stage_fingerprint`), whether it
finished, how long it took and the rate it measured. A stage is skipped when it finished, its
outputs are all there and its fingerprint is the one recorded. Otherwise its folder is emptied
and it runs again; a resumable stage (training) that stopped with the same fingerprint
continues instead. A stage reruns when one of its own inputs changed, so a change reaches every
later stage that reads what it remade, and none that does not (a new study name does not
retrain the generator).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from study.reproduce.estimates import Estimate, Work, duration, estimate, measured_rate
from study.reproduce.fingerprints import stage_fingerprint

RECORDS = ".stages"
DONE, RUNNING = "done", "running"


def _always() -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline.

    `inputs()` digests what it reads ({name: digest}); `outputs()` lists the files it makes;
    `present()` says whether what it made outside its files (database rows) is still there;
    `run(resume)` does the work, continuing an interrupted run when `resume`; `folder`, when
    the stage has one, is emptied before a fresh run.
    """

    name: str
    what: str
    options: Mapping[str, Any]
    inputs: Callable[[], dict[str, str]]
    outputs: Callable[[], list[Path]]
    work: Callable[[], Work]
    run: Callable[[bool], None]
    folder: Path | None
    present: Callable[[], bool] = _always
    resumable: bool = False


@dataclass(frozen=True)
class StageTime:
    """What a stage did in this run: ran or skipped, the seconds it took now, the seconds it took
    when it last ran, and its estimate."""

    name: str
    ran: bool
    reason: str
    seconds: float
    last_seconds: float | None
    estimate_s: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.name,
            "ran": self.ran,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "last_run_seconds": None if self.last_seconds is None else round(self.last_seconds, 3),
            "estimate_seconds": None if self.estimate_s is None else round(self.estimate_s, 1),
        }


@dataclass(frozen=True)
class Records:
    """The stage records of an output folder."""

    folder: Path

    def path(self, name: str) -> Path:
        return self.folder / RECORDS / f"{name}.json"

    def read(self, name: str) -> dict[str, Any] | None:
        try:
            record = json.loads(self.path(name).read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def write(self, name: str, record: dict[str, Any]) -> None:
        # Written whole and renamed, so that an interrupted write leaves the old record.
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        os.replace(temporary, path)


def _why(record: dict[str, Any] | None, fingerprint: str, options: Mapping[str, Any]) -> str:
    """Why a stage that is not skipped runs."""
    if record is None:
        return "first run"
    if record.get("fingerprint") == fingerprint:
        return "interrupted before" if record.get("state") == RUNNING else "outputs missing"
    if json.loads(json.dumps(options, default=str)) != record.get("options"):
        return "options changed"
    return "inputs changed"


def _clear(stage: Stage) -> None:
    if stage.folder is not None and stage.folder.exists():
        shutil.rmtree(stage.folder)
    for path in stage.outputs():
        path.unlink(missing_ok=True)


def log(message: str) -> None:
    """A line of the run's account, on stderr (stdout carries the result)."""
    print(message, file=sys.stderr, flush=True)


def run_stages(stages: list[Stage], records: Records) -> list[StageTime]:
    """Run or skip each stage in turn; the time of each."""
    times = []
    for number, stage in enumerate(stages, start=1):
        head = f"[{number}/{len(stages)}] {stage.name}"
        started = time.perf_counter()
        fingerprint = stage_fingerprint(stage.name, stage.options, stage.inputs())
        record = records.read(stage.name)
        last = None if record is None else record.get("seconds")
        if (
            record is not None
            and record.get("state") == DONE
            and record.get("fingerprint") == fingerprint
            and all(path.exists() for path in stage.outputs())
            and stage.present()
        ):
            log(f"{head}: skipped, done before in {duration(float(last or 0))}")
            times.append(
                StageTime(
                    stage.name,
                    False,
                    "unchanged",
                    time.perf_counter() - started,
                    last,
                    record.get("estimate_s"),
                )
            )
            continue
        reason = _why(record, fingerprint, stage.options)
        resume = stage.resumable and reason == "interrupted before"
        work = stage.work()
        expected: Estimate = estimate(work, record.get("rate") if record else None)
        log(f"{head}: {stage.what} ({reason}); {expected.text()}")
        if not resume:
            _clear(stage)
        base = {
            "stage": stage.name,
            "fingerprint": fingerprint,
            "options": json.loads(json.dumps(stage.options, default=str)),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "estimate_s": expected.seconds,
            "work": {"units": work.units, "unit": work.unit, "kind": work.kind},
        }
        records.write(stage.name, {**base, "state": RUNNING})
        stage.run(resume)
        seconds = time.perf_counter() - started
        records.write(
            stage.name,
            {**base, "state": DONE, "seconds": seconds, "rate": measured_rate(work, seconds)},
        )
        log(f"{head}: done in {duration(seconds)}")
        times.append(StageTime(stage.name, True, reason, seconds, seconds, expected.seconds))
    return times


def times_table(times: list[StageTime]) -> str:
    """The stage times as a text table."""
    lines = [f"{'stage':<10}{'this run':>12}  {'last run':>10}  {'estimate':>10}  what"]
    for item in times:
        now = duration(item.seconds) if item.ran else "skipped"
        last = "-" if item.last_seconds is None else duration(item.last_seconds)
        expected = "-" if item.estimate_s is None else duration(item.estimate_s)
        lines.append(f"{item.name:<10}{now:>12}  {last:>10}  {expected:>10}  {item.reason}")
    lines.append(f"{'total':<10}{duration(sum(t.seconds for t in times)):>12}")
    return "\n".join(lines)
