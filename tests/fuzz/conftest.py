"""Hypothesis profiles for fuzzing the importers, and a count of the inputs each target ran.

- `fuzz` (`make fuzz`, `--hypothesis-profile=fuzz`): VTT_FUZZ_EXAMPLES inputs in all (default
  10,000), shared evenly by the fuzz targets, with fresh random inputs on every run.
- otherwise (the normal suite): a derandomised slice of 1,000 inputs in all, the same every run.

Each input has its own time limit in the tests (a signal, not Hypothesis's deadline, so that a
slow shared CI machine does not turn a 50 ms input into a flaky failure and a real hang still
fails). No example database: nothing is written into the working tree.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings

FUZZ_PROFILE = "fuzz"
SLICE_PROFILE = "fuzz-slice"
FUZZ_TOTAL = int(os.environ.get("VTT_FUZZ_EXAMPLES", "10000"))
SLICE_TOTAL = 1000
_COMMON = {
    "deadline": None,
    "database": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile(FUZZ_PROFILE, max_examples=FUZZ_TOTAL, **_COMMON)
settings.register_profile(SLICE_PROFILE, max_examples=SLICE_TOTAL, derandomize=True, **_COMMON)

_COUNTS = pytest.StashKey[Counter]()


@pytest.fixture(scope="session")
def fuzz_counts(pytestconfig: pytest.Config) -> Counter:
    """Inputs run per fuzz target, reported at the end of the session."""
    return pytestconfig.stash.setdefault(_COUNTS, Counter())


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    counts = config.stash.get(_COUNTS, None)
    if counts:
        detail = ", ".join(f"{target} {n:,}" for target, n in sorted(counts.items()))
        terminalreporter.write_line(f"fuzz: {sum(counts.values()):,} inputs ({detail})")
