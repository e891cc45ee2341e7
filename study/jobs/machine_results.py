"""The results of a study's machine checks as tables, beside the readers' figures of the same
study (taken from its report, `study.report`, never recomputed).

- `realism_table`: the `synth evaluate` object (C2ST, memorisation, conditioning fidelity);
- `against_readers`: the C2ST AUC and the readers' real-or-synthetic accuracy, per reader and
  pooled, each with its 95% interval (0.5 is chance for both: 1 - AUC or 1 - accuracy above
  it is how often a machine or a reader is fooled);
- `augmentation_arms`, `augmentation_folds`: the `synth augment` object, with the seed study's
  published classifier row (`SEED_AUGMENTATION`) for comparison.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from study.stats.tables import POOLED
from synth.contract import AUGMENT_ARMS, AUGMENT_METRICS

# Saeed et al. (MIDL 2023), Table 4.3, last row: lesion classifier accuracy, mean +- sd.
SEED_AUGMENTATION = {"real": (0.704, 0.035), "real+synthetic": (0.762, 0.042)}
ARMS, METRICS = AUGMENT_ARMS, AUGMENT_METRICS
REAL_OR_SYNTHETIC = "real_or_synthetic"


def readers_real_or_synthetic(per_reader: pd.DataFrame | None) -> pd.DataFrame:
    """Each reader's accuracy on the real-or-synthetic question, then the pooled row: reader,
    n, accuracy, its Wilson 95% limits, and the exact binomial p against 0.5 (no rows without
    a report's per-reader table)."""
    if per_reader is None or per_reader.empty:
        return pd.DataFrame(columns=["reader", "n", "accuracy", "low", "high", "p"])
    rows = per_reader[per_reader["question_kind"] == REAL_OR_SYNTHETIC]
    rows = pd.concat([rows[rows["reader"] != POOLED], rows[rows["reader"] == POOLED]])
    return pd.DataFrame(
        {
            "reader": rows["reader"].astype(str),
            "n": rows["n"].astype(int),
            "accuracy": rows["accuracy"],
            "low": rows["accuracy_wilson_low"],
            "high": rows["accuracy_wilson_high"],
            "p": rows["accuracy_p_vs_chance"],
        }
    ).reset_index(drop=True)


def against_readers(evaluation: dict[str, Any] | None, readers: pd.DataFrame) -> pd.DataFrame:
    """The machine's C2ST AUC and the readers' accuracies, each with its 95% interval:
    who, estimate, low, high, what (the figure of merit), and the interval's reach below and
    above the estimate (minus, plus) for error bars. Without an evaluation, the readers'."""
    rows = []
    if evaluation is not None:
        low, high = evaluation["c2st_auc_ci"]
        rows.append(
            {
                "who": "machine (C2ST)",
                "estimate": evaluation["c2st_auc"],
                "low": low,
                "high": high,
                "what": "AUC, DeLong interval",
            }
        )
    rows += [
        {
            "who": f"readers pooled ({POOLED})" if row.reader == POOLED else f"reader {row.reader}",
            "estimate": row.accuracy,
            "low": row.low,
            "high": row.high,
            "what": "accuracy, Wilson interval",
        }
        for row in readers.itertuples()
    ]
    points = pd.DataFrame(rows, columns=["who", "estimate", "low", "high", "what"])
    return points.assign(
        minus=points["estimate"] - points["low"], plus=points["high"] - points["estimate"]
    )


def summary(kind: str, result: dict[str, Any]) -> str:
    """One line of a finished check's result: the C2ST AUC, or the accuracy difference."""
    if kind == "evaluate":
        low, high = result["c2st_auc_ci"]
        return f"C2ST AUC {result['c2st_auc']:.3f} (95% CI {low:.3f}-{high:.3f})"
    difference = result["difference"]["accuracy"]
    low, high = difference["ci"]
    return (
        f"accuracy real+synthetic minus real {difference['mean']:+.3f} "
        f"(95% CI {low:+.3f} to {high:+.3f})"
    )


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def realism_table(evaluation: dict[str, Any]) -> pd.DataFrame:
    """The `synth evaluate` object as rows: measure, synthetic, held-out real (the value a
    perfect generator would get), and what the measure says."""
    low, high = evaluation["c2st_auc_ci"]
    rows = [
        (
            "C2ST AUC (95% DeLong CI)",
            f"{evaluation['c2st_auc']:.3f} ({low:.3f}-{high:.3f})",
            "0.500",
            "0.5: the classifier cannot tell synthetic from real",
        ),
        (
            "lesion agreement",
            _number(evaluation["lesion_agreement"]),
            _number(evaluation["lesion_agreement_heldout_real"]),
            "share showing the lesion status they were made for",
        ),
        (
            "sequence agreement",
            _number(evaluation["sequence_agreement"]),
            _number(evaluation["sequence_agreement_heldout_real"]),
            "share recognised as the sequence they were made as",
        ),
    ]
    nearest = evaluation.get("nearest_train_ncc")
    if nearest:
        for statistic in ("p50", "p95", "max"):
            rows.append(
                (
                    f"nearest training image NCC, {statistic}",
                    _number(nearest["synthetic"][statistic]),
                    _number(nearest["heldout_real"][statistic]),
                    "closer to 1 than held-out real images: copied",
                )
            )
        rows.append(
            (
                "likely copies",
                str(evaluation["memorised_count"]),
                "0",
                "synthetic images nearer a training image than any held-out real one",
            )
        )
    return pd.DataFrame(rows, columns=["measure", "synthetic", "held-out real", "reading"])


def augmentation_arms(augmentation: dict[str, Any]) -> pd.DataFrame:
    """Both arms as 'mean +- sd' over the folds and their paired difference with its 95%
    interval, a row per metric; then the seed study's accuracy row."""
    rows = []
    for metric in METRICS:
        arms = {
            arm: "{mean:.3f} +- {sd:.3f}".format(**augmentation["arms"][arm][metric])
            for arm in ARMS
        }
        difference = augmentation["difference"][metric]
        low, high = difference["ci"]
        rows.append(
            {
                "metric": metric,
                **arms,
                "difference (95% CI)": f"{difference['mean']:+.3f} ({low:+.3f} to {high:+.3f})",
            }
        )
    rows.append(
        {
            "metric": "accuracy, seed study (Saeed et al.)",
            **{arm: "{:.3f} +- {:.3f}".format(*value) for arm, value in SEED_AUGMENTATION.items()},
            "difference (95% CI)": "not reported",
        }
    )
    return pd.DataFrame(rows, columns=["metric", *ARMS, "difference (95% CI)"])


def augmentation_folds(augmentation: dict[str, Any]) -> pd.DataFrame:
    """One row per fold, arm and metric: repeat, fold, its label ('repeat 1, fold 2'), arm,
    metric, value."""
    return pd.DataFrame(
        [
            {
                "repeat": fold["repeat"],
                "fold": fold["fold"],
                "label": f"repeat {fold['repeat']}, fold {fold['fold']}",
                "arm": arm,
                "metric": metric,
                "value": fold[arm][metric],
            }
            for fold in augmentation["folds"]
            for arm in ARMS
            for metric in METRICS
        ],
        columns=["repeat", "fold", "label", "arm", "metric", "value"],
    )


def augmentation_fold_table(augmentation: dict[str, Any]) -> pd.DataFrame:
    """One row per fold: its sizes and each metric of both arms."""
    return pd.DataFrame(
        [
            {
                "repeat": fold["repeat"],
                "fold": fold["fold"],
                "held-out patients": fold["test_patients"],
                "train real": fold["n_train_real"],
                "train synthetic": fold["n_train_synthetic"],
                "test": fold["n_test"],
                "steps": fold["steps"],
                **{f"{metric} {arm}": fold[arm][metric] for metric in METRICS for arm in ARMS},
            }
            for fold in augmentation["folds"]
        ]
    )
