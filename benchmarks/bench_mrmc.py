"""Obuchowski-Rockette MRMC speed: 10 readers x 2 treatments x 2000 cases, target <= 2 s.

Run from the project root: `python -m benchmarks.bench_mrmc`. Times reading the CSV and the
full analysis (AUC and sensitivity), best of five, on seeded binormal ratings.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from study.stats.mrmc import obuchowski_rockette, read_mrmc_csv

READERS, TREATMENTS, CASES = 10, 2, 2000
TARGET_S = 2.0


def ratings_frame(seed: int = 0) -> pd.DataFrame:
    """Seeded binormal study: every reader rates every case on a 100-point scale."""
    rng = np.random.default_rng(seed)
    truth = rng.random(CASES) < 0.4
    latent = 1.2 * truth + rng.normal(size=CASES)
    frames = []
    for treatment in range(TREATMENTS):
        for reader in range(READERS):
            noisy = latent + 0.2 * treatment + rng.normal(scale=0.8, size=CASES)
            frames.append(
                pd.DataFrame(
                    {
                        "reader": reader,
                        "treatment": treatment,
                        "case": np.arange(CASES),
                        "truth": truth.astype(int),
                        "rating": np.round(noisy * 20),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ratings.csv"
        ratings_frame().to_csv(path, index=False)
        data = read_mrmc_csv(path)
        read_s = best_of(5, lambda: read_mrmc_csv(path))
        auc_s = best_of(5, lambda: obuchowski_rockette(data, "auc"))
        sensitivity_s = best_of(5, lambda: obuchowski_rockette(data, "sensitivity", threshold=10))
    total = read_s + auc_s
    verdict = "within" if total <= TARGET_S else "OVER"
    print(f"MRMC {READERS} readers x {TREATMENTS} treatments x {CASES} cases (best of 5)")
    for label, seconds in (
        ("read and check CSV", read_s),
        ("OR analysis, AUC", auc_s),
        ("OR analysis, sensitivity", sensitivity_s),
        ("CSV to AUC result", total),
    ):
        print(f"  {label:<26}{seconds * 1000:8.1f} ms")
    print(f"  {verdict} the {TARGET_S:.0f} s target")


if __name__ == "__main__":
    main()
