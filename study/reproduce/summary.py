"""The machine results of a reproduction as one HTML page (OUT/summary.html), from the Jinja2
template study/templates/reproduce_summary.html.j2 (autoescaped, standalone: nothing is fetched
from elsewhere). The tables are the Machine evaluation page's (`study.jobs.machine_results`),
so the page and the app read a result the same way; the seed study's classifier row is beside
the augmentation experiment's.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from study.jobs.machine_results import (
    SEED_AUGMENTATION,
    augmentation_arms,
    augmentation_fold_table,
    realism_table,
)
from study.reproduce.estimates import duration
from study.templating import environment

TEMPLATE = "reproduce_summary.html.j2"
TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "templates" / TEMPLATE


@dataclass(frozen=True)
class SummaryInputs:
    """What the page shows, as the stages wrote it."""

    size: str
    prepared: Mapping[str, Any]
    split: Mapping[str, Any]
    checkpoint: Mapping[str, Any]
    synthetic: list[dict[str, str]]
    evaluation: Mapping[str, Any]
    augmentation: Mapping[str, Any]
    study: Mapping[str, Any]
    records: list[Mapping[str, Any]]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def table(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """A table for the template: its columns and its rows of text."""
    return {
        "columns": [str(column) for column in frame.columns],
        "rows": [[_cell(value) for value in row] for row in frame.itertuples(index=False)],
    }


def _synthetic_table(rows: list[dict[str, str]]) -> dict[str, list[Any]]:
    lesion = {"1": "with lesion", "0": "without lesion"}
    counts = Counter(
        (
            row["sequence"],
            lesion.get(row["lesion"], "unknown"),
            "from a synthetic T2W" if row.get("condition_sha256") else "from the prompt",
        )
        for row in rows
    )
    frame = pd.DataFrame(
        [(*key, count) for key, count in sorted(counts.items())],
        columns=["sequence", "lesion", "made", "images"],
    )
    return table(frame)


def _stage_table(records: list[Mapping[str, Any]]) -> dict[str, list[Any]]:
    rows = [
        (
            record["stage"],
            record.get("started", ""),
            duration(float(record["seconds"])),
            "-" if record.get("estimate_s") is None else duration(float(record["estimate_s"])),
            f"{record['work']['units']:g} {record['work']['unit']}",
        )
        for record in records
    ]
    total = sum(float(record["seconds"]) for record in records)
    rows.append(("total", "", duration(total), "", ""))
    return table(pd.DataFrame(rows, columns=["stage", "last ran", "took", "estimate", "work"]))


def summary_html(inputs: SummaryInputs, *, generated_at: datetime | None = None) -> str:
    """The page."""
    evaluation, augmentation = inputs.evaluation, inputs.augmentation
    low, high = evaluation["c2st_auc_ci"]
    accuracy = augmentation["difference"]["accuracy"]
    study = inputs.study
    return (
        environment()
        .get_template(TEMPLATE)
        .render(
            size=inputs.size,
            generated=(generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
            prepared=inputs.prepared,
            sequences=table(
                pd.DataFrame(
                    [
                        (sequence, counts["slices"], counts["lesion_slices"])
                        for sequence, counts in inputs.prepared["sequences"].items()
                    ],
                    columns=["sequence", "slices", "lesion slices"],
                )
            ),
            split=table(
                pd.DataFrame(
                    [
                        (
                            side,
                            len(inputs.split[key]["patients"]),
                            inputs.split[key]["lesion_patients"],
                            inputs.split[key]["t2w_slices"],
                            inputs.split[key]["t2w_lesion_slices"],
                        )
                        for side, key in (("generator training", "train"), ("held out", "heldout"))
                    ],
                    columns=["side", "patients", "with lesion", "T2W slices", "lesion slices"],
                )
            ),
            split_share=inputs.split["heldout_share"],
            split_data=inputs.split,
            model=inputs.checkpoint.get("model", {}),
            training=inputs.checkpoint.get("training", {}),
            synthetic=_synthetic_table(inputs.synthetic),
            synthetic_count=len(inputs.synthetic),
            c2st=(evaluation["c2st_auc"], low, high),
            realism=table(realism_table(dict(evaluation))),
            evaluation=evaluation,
            arms=table(augmentation_arms(dict(augmentation))),
            folds=table(augmentation_fold_table(dict(augmentation))),
            accuracy=(accuracy["mean"], *accuracy["ci"]),
            seed_paper=SEED_AUGMENTATION,
            augmentation=augmentation,
            study=study,
            fewer_cases=study["cases_per_block"] < study["asked_per_block"],
            composition=table(pd.DataFrame(study["composition"])),
            stages=_stage_table(inputs.records),
        )
    )


def write_summary(path: Path, inputs: SummaryInputs) -> Path:
    """Write the page to `path`; `path`."""
    path.write_text(summary_html(inputs), encoding="utf-8")
    return path
