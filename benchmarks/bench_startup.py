"""Start-up time of the command lines: how long `--help` takes, which is the import cost a
command pays before it does any work (`python -m study mrmc`, `python -m synth phantom`).

Target: under 1 s each on the development machine. Each command runs `--repeat` times in a
fresh interpreter; the median and the slowest are printed, with the heaviest imports of one run
(`python -X importtime`, cumulative microseconds).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("study", "mrmc", "--help"),
    ("synth", "phantom", "--help"),
    ("study", "--help"),
    ("synth", "--help"),
)
TARGET_S = 1.0


def wall_time(args: tuple[str, ...], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, check=True, capture_output=True, timeout=120
    )
    return time.perf_counter() - start


def heaviest_imports(args: tuple[str, ...], cwd: Path, top: int = 5) -> list[tuple[str, int]]:
    """The top-level packages that cost most to import (cumulative microseconds)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    costs: dict[str, int] = {}
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.split(":", 1)[1].split("|"))
        if cumulative.isdigit() and not name.startswith(" ") and "." not in name:
            costs[name] = max(costs.get(name, 0), int(cumulative))
    return sorted(costs.items(), key=lambda item: -item[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="checkout to measure (e.g. an older commit's)"
    )
    args = parser.parse_args()
    print(f"checkout: {args.root}; target < {TARGET_S:.1f} s")
    for command in COMMANDS:
        times = [wall_time(command, args.root) for _ in range(args.repeat)]
        verdict = "met" if statistics.median(times) < TARGET_S else "NOT met"
        print(
            f"python -m {' '.join(command)}: median {statistics.median(times):.2f} s, "
            f"slowest {max(times):.2f} s ({verdict})"
        )
        heavy = ", ".join(
            f"{name} {us / 1e6:.2f} s" for name, us in heaviest_imports(command, args.root)
        )
        print(f"    heaviest imports: {heavy}")


if __name__ == "__main__":
    main()
