"""How long a stage will take, said before it starts: its amount of work (from the data size)
times a rate.

The rate is the one this output folder measured the last time the same stage ran the same kind
of work (same device, model and image size), else the table below, measured on this project's
machines: the development machine's 2-core CPU (`python -m study reproduce --quick` on the
PI-CAI-layout phantom, docs/benchmarks.md) and, for CUDA, the H100 figures of the generator's
benchmarks. Each rate is seconds per unit of work plus a fixed start-up (loading torch, the
images, the model).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

CPU = "measured on a 2-core x86_64 CPU"
CPU_GUESS = "estimated for a 2-core x86_64 CPU from its sampling speed"
H100 = "measured on an NVIDIA H100"


@dataclass(frozen=True)
class Work:
    """How much a stage does (`units` of `unit`) and which rate applies (`kind`)."""

    units: float
    unit: str
    kind: str


@dataclass(frozen=True)
class Rate:
    seconds_per_unit: float
    start_s: float
    where: str


# Keyed by Work.kind; the work of each stage is described beside the stage (pipeline.py).
RATES: Mapping[str, Rate] = {
    "prepare": Rate(0.04, 0.5, CPU),
    "split": Rate(0.001, 0.1, CPU),
    "train/cpu/tiny@32/batch16": Rate(0.13, 8.0, CPU),
    # Not run to the end here: a step of 128 is about 3 x 128 network calls of 0.17 s.
    "train/cpu/default@128/batch128": Rate(60.0, 30.0, CPU_GUESS),
    "train/cuda/default@128/batch128": Rate(0.15, 150.0, H100),
    # Eight `synth sample` runs, each loading torch and the checkpoint (about 7 s here).
    "sample/cpu/tiny@32": Rate(0.01, 60.0, CPU),
    "sample/cpu/default@128": Rate(0.35, 60.0, CPU),
    "sample/cuda/default@128": Rate(0.002, 80.0, H100),
    "evaluate/32px": Rate(0.002, 8.0, CPU),
    "evaluate/64px": Rate(0.004, 10.0, CPU),
    "augment/quick": Rate(0.002, 5.0, CPU),
    "augment/full": Rate(0.012, 10.0, CPU),
    "import": Rate(0.002, 0.3, CPU),
    "study": Rate(0.0, 0.5, CPU),
    "summary": Rate(0.0, 0.2, CPU),
}


@dataclass(frozen=True)
class Estimate:
    """Seconds a stage should take (None: no rate for its kind of work) and why."""

    seconds: float | None
    basis: str

    def text(self) -> str:
        if self.seconds is None:
            return f"no estimate ({self.basis})"
        return f"about {duration(self.seconds)} ({self.basis})"


def estimate(work: Work, last: Mapping[str, float | str] | None = None) -> Estimate:
    """The estimate of `work`; `last` is the rate this folder measured before ({"kind",
    "seconds_per_unit", "start_s"}), used when it was for the same kind of work."""
    amount = f"{_number(work.units)} {work.unit if work.units == 1 else _plural(work.unit)}"
    if last is not None and last.get("kind") == work.kind:
        rate = Rate(float(last["seconds_per_unit"]), float(last["start_s"]), "measured here")
    elif work.kind in RATES:
        rate = RATES[work.kind]
    else:
        return Estimate(None, f"{amount}; no rate measured for {work.kind}")
    seconds = rate.start_s + work.units * rate.seconds_per_unit
    per = f"{rate.seconds_per_unit:.3g} s each" if rate.seconds_per_unit else "fixed"
    return Estimate(seconds, f"{amount} at {per}, {rate.where}")


def measured_rate(work: Work, seconds: float) -> dict[str, float | str]:
    """The rate a finished stage measured, for `estimate(..., last=...)` next time: the table's
    start-up kept, the rest spread over the units."""
    start = RATES[work.kind].start_s if work.kind in RATES else 0.0
    per_unit = max(seconds - start, 0.0) / work.units if work.units else 0.0
    return {"kind": work.kind, "seconds_per_unit": per_unit, "start_s": min(start, seconds)}


def duration(seconds: float) -> str:
    """A duration as a person reads it: '40 s', '3.5 min', '2.1 h', '3.2 days'.

    >>> [duration(s) for s in (0.4, 40, 210, 7560, 280000)]
    ['0.4 s', '40 s', '3.5 min', '2.1 h', '3.2 days']
    """
    if seconds < 10:
        return f"{seconds:.1g} s" if seconds < 1 else f"{seconds:.0f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.2g} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.2g} h"
    return f"{seconds / 86400:.2g} days"


def _plural(unit: str) -> str:
    """
    >>> [_plural(u) for u in ("study", "image step", "day")]
    ['studies', 'image steps', 'days']
    """
    if unit.endswith("y") and unit[-2:-1] not in ("a", "e", "i", "o", "u"):
        return unit[:-1] + "ies"
    return unit + "s"


def _number(value: float) -> str:
    return f"{value:,.0f}" if math.isfinite(value) and value == int(value) else f"{value:,.1f}"
