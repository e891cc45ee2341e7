"""`python -m benchmarks [NAME ...]`: run the benchmarks (every `bench_*.py` by default).

Each benchmark module has a `main()` that prints its measurements and the targets they are
held against; the results are copied into docs/benchmarks.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import sys

import benchmarks


def main() -> int:
    available = sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"default: all of {', '.join(available)}")
    names = parser.parse_args().names or available
    unknown = sorted(set(names) - set(available))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(available)}")
    cores = os.cpu_count()
    print(f"machine: {platform.machine()}, {cores} cores, Python {platform.python_version()}")
    for name in names:
        print(f"\n== {name}", flush=True)
        # Each benchmark reads its own options from sys.argv: run it with its defaults.
        sys.argv = [name]
        importlib.import_module(f"benchmarks.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
