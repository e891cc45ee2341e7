"""Timed exposure (HYPE, Zhou et al. 2019): a block's images shown for a limited time, then
replaced by a mask, before the reader answers real or synthetic.

An exposure is fixed (every case of the block shown `ms` milliseconds) or adaptive: a staircase
per reader and block that starts at `ms`, shows the next case `step_ms` shorter after a correct
answer and three steps longer after a wrong one, within [min_ms, max_ms]. This weighted
up-down rule (Kaernbach 1991) settles where the reader is right three times in four (down x
0.75 = up x 0.25), the usual threshold of a two-choice task; the exposure the staircase
dwells on most is the reader's perceptual threshold, HYPE-time (study.stats.hype).

Practice cases are shown for the block's starting exposure and do not move the staircase.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from study.imaging.errors import VTTError

# A wrong answer moves the staircase this many steps up, a correct one one step down.
UP_STEPS = 3
# Below about two frames of a 60 Hz screen an exposure cannot be shown faithfully.
SHORTEST_MS = 34
LONGEST_MS = 10_000


class ExposureError(VTTError):
    """An exposure setting that cannot be honoured; the message says what to change."""


@dataclass(frozen=True)
class Exposure:
    """How long each image of a block is shown: `ms` (fixed), or where the reader's staircase
    starts when `adaptive` (steps of `step_ms`, kept within [min_ms, max_ms])."""

    ms: int = 500
    adaptive: bool = False
    step_ms: int = 50
    min_ms: int = 100
    max_ms: int = 1000

    def as_setting(self, block: int) -> dict[str, Any]:
        """What a case of block number `block` stores (Case.exposure)."""
        return {**asdict(self), "block": block}


def check_exposure(exposure: Exposure) -> None:
    """`ExposureError` unless every duration is a whole number of milliseconds within
    [SHORTEST_MS, LONGEST_MS] and, for a staircase, min <= start <= max with a positive step."""
    for name in ("ms", "step_ms", "min_ms", "max_ms"):
        value = getattr(exposure, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ExposureError(f"the exposure's {name} must be whole milliseconds, not {value!r}")
    if not SHORTEST_MS <= exposure.ms <= LONGEST_MS:
        raise ExposureError(
            f"an exposure of {exposure.ms} ms cannot be shown faithfully: choose between "
            f"{SHORTEST_MS} and {LONGEST_MS} ms"
        )
    if not exposure.adaptive:
        return
    if exposure.step_ms <= 0:
        raise ExposureError(f"the staircase's step must be positive, not {exposure.step_ms} ms")
    if not SHORTEST_MS <= exposure.min_ms <= exposure.ms <= exposure.max_ms <= LONGEST_MS:
        raise ExposureError(
            f"the staircase must start within its range: {exposure.min_ms} <= {exposure.ms} <= "
            f"{exposure.max_ms} ms, all between {SHORTEST_MS} and {LONGEST_MS} ms"
        )


def exposure_from_setting(setting: Mapping[str, Any]) -> Exposure:
    """The exposure a case stores (Case.exposure), without its block number."""
    return Exposure(
        ms=int(setting["ms"]),
        adaptive=bool(setting.get("adaptive", False)),
        step_ms=int(setting.get("step_ms", 50)),
        min_ms=int(setting.get("min_ms", 100)),
        max_ms=int(setting.get("max_ms", 1000)),
    )


def next_step(exposure: Exposure, shown_ms: int, correct: bool) -> int:
    """The staircase's exposure after a case shown `shown_ms` and answered (in)correctly."""
    moved = shown_ms - exposure.step_ms if correct else shown_ms + UP_STEPS * exposure.step_ms
    return min(exposure.max_ms, max(exposure.min_ms, moved))
