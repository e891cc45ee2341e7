"""Results of a large study: 100 readers x 1000 cases x 3 questions (300,000 answers), every
table of `study.reports.build_report`, target <= 5 s (file exports not counted).

Run from the project root: `python -m benchmarks.bench_analysis`. The seeded synthetic answer
frame has what the tables need: every case is asked real or synthetic and a confidence rating;
the paired half is asked about a lesion and the single half to rate realism (1-5), so that
per-reader, pooled and subgroup metrics, the seed study table, lesion accuracy by origin,
Cohen and Fleiss kappas, intra-reader agreement (50 repeated cases), Likert distributions and
tests, ROC with DeLong intervals, OR MRMC and the fool-rate table are all computed. Prints
the best of three, wall and CPU time, overall and per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from study.reports import build_report
from study.stats.agreement import group_agreement, intra_reader_agreement, pairwise_agreement
from study.stats.likert import likert_distribution, likert_summary
from study.stats.roc import auc_table
from study.stats.tables import metrics_table, per_reader_table, seed_table

READERS, CASES, REPEATS = 100, 1000, 50
TARGET_S = 5.0


def synthetic_answers(seed: int = 0) -> pd.DataFrame:
    """A seeded tidy frame: readers of varying skill, half single and half paired cases
    (T2W / ADC singles, T2W+DWI pairs), half synthetic and half with lesions."""
    rng = np.random.default_rng(seed)
    case = np.arange(CASES)
    paired = case >= CASES // 2
    origin = np.where(rng.random(CASES) < 0.5, "synthetic", "real")
    lesion = (rng.random(CASES) < 0.5).astype(int)
    sequence = np.where(paired, "T2W+DWI", np.where(case % 2 == 0, "T2W", "ADC"))
    skill = rng.uniform(0.5, 0.8, READERS)
    repeated = rng.choice(CASES, REPEATS, replace=False)
    frames = []
    for r in range(READERS):
        shown = np.concatenate([case, repeated])
        repeat = np.arange(len(shown)) >= CASES
        right = rng.random(len(shown)) < skill[r]
        truth_synthetic = origin[shown] == "synthetic"
        called_synthetic = np.where(right, truth_synthetic, ~truth_synthetic)
        confidence = np.clip(np.round(1 + 4 * rng.beta(2 + 3 * right, 2, len(shown))), 1, 5)
        lesion_right = rng.random(len(shown)) < skill[r]
        has_lesion = lesion[shown] == 1
        realism = np.clip(np.round(rng.normal(3.4 - 0.6 * truth_synthetic, 1.0, len(shown))), 1, 5)
        common = {
            "reader": f"R{r:03d}",
            "experience_years": float(1 + r % 20),
            "case_id": shown,
            "case_public_id": [f"c{c:05d}" for c in shown],
            "origin": origin[shown],
            "sequence": sequence[shown],
            "lesion": lesion[shown],
            "paired": paired[shown],
            "practice": False,
            "repeat": repeat,
            "repeat_of": np.where(repeat, shown, np.nan),
            "correct_side": None,
            "time_s": rng.gamma(4.0, 2.0, len(shown)),
            "revisions": 1,
        }
        third_kind = np.where(paired[shown], "lesion_present", "likert_realism")
        third_value = np.where(
            paired[shown],
            np.where(lesion_right == has_lesion, "yes", "no"),
            realism.astype(int).astype(str),
        )
        for kind, question_id, value in (
            ("real_or_synthetic", 1, np.where(called_synthetic, "synthetic", "real")),
            ("confidence", 2, confidence.astype(int).astype(str)),
            (third_kind, np.where(paired[shown], 3, 4), third_value),
        ):
            frames.append(
                pd.DataFrame(
                    {**common, "question_kind": kind, "question_id": question_id, "value": value}
                )
            )
    tidy = pd.concat(frames, ignore_index=True)
    tidy["lesion"] = tidy["lesion"].astype("Int64")
    return tidy


def best_of(repeats: int, run: Callable[[], object]) -> tuple[float, float]:
    """Best wall and CPU seconds of `repeats` runs (the CPU time shows what a busy machine
    hides)."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def main() -> None:
    tidy = synthetic_answers()
    first = tidy[~tidy["repeat"]]
    print(
        f"{tidy['reader'].nunique()} readers x {first['case_id'].nunique()} cases, "
        f"{len(first):,} answers (+{len(tidy) - len(first):,} on repeated cases)"
    )
    steps: list[tuple[str, Callable[[], object]]] = [
        ("per-reader + pooled metrics", lambda: per_reader_table(tidy)),
        (
            "subgroup metrics (sequence x lesion)",
            lambda: metrics_table(tidy, by=["sequence", "lesion"]),
        ),
        ("seed study table", lambda: seed_table(tidy)),
        ("Cohen kappa, 4,950 pairs", lambda: pairwise_agreement(tidy, "real_or_synthetic")),
        ("Fleiss kappa", lambda: group_agreement(tidy, "real_or_synthetic")),
        ("intra-reader agreement", lambda: intra_reader_agreement(tidy, "real_or_synthetic")),
        (
            "Likert distribution + bootstrap",
            lambda: (likert_distribution(tidy), likert_summary(tidy, seed=0)),
        ),
        ("AUC + DeLong per reader", lambda: auc_table(tidy)),
    ]
    for name, run in steps:
        wall, cpu = best_of(1, run)
        print(f"  {name:<40} {wall:6.2f} s wall, {cpu:6.2f} s CPU")
    report = build_report(tidy)
    wall, cpu = best_of(3, lambda: build_report(tidy))
    assert report.mrmc is not None and not report.agreement_pairs.empty
    print(
        f"every table (build_report): {wall:.2f} s wall, {cpu:.2f} s CPU "
        f"(target <= {TARGET_S:.0f} s): {'ok' if wall <= TARGET_S else 'OVER'}"
    )
    print(
        f"  MRMC mean AUC {report.mrmc.fom:.3f} ({report.mrmc.low:.3f}-{report.mrmc.high:.3f}), "
        f"{len(report.agreement_pairs):,} reader pairs, {len(report.fool_rate):,} images in the "
        "fool-rate table"
    )


if __name__ == "__main__":
    main()
