"""A study's timed exposure results (HYPE, `study.stats.hype`), from its tidy answers.

- Staircase blocks (adaptive exposure): each reader's trials in the order they answered them
  (a trial is a case of the block, repeated cases included, with the first real/synthetic or
  which-is-real call on it: the call that moved the staircase), each reader's threshold, and
  HYPE-time per block.
- Error rates of real/synthetic and which-is-real calls on untimed cases (HYPE-infinity) and
  at each fixed exposure.
- The measured shown durations of every timed case.

Blocks are numbered from 1 in the order of the study's plan; a staircase's longest exposure
comes from the study's settings (the plan's blocks). Practice cases and machine readers are
left out (a machine sees no exposure).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from study.exposure import Exposure, exposure_from_setting
from study.stats import StatsError
from study.stats.equivalence import REALISM_KINDS
from study.stats.hype import (
    MEAN_OF_READERS,
    error_rate_table,
    hype_time_table,
    shown_duration_table,
    threshold_table,
)
from study.stats.tables import analysis_rows, binary_calls

UNTIMED = "untimed (HYPE-infinity)"
TRIAL_COLUMNS: tuple[str, ...] = (
    "block",
    "reader",
    "trial",
    "case_id",
    "exposure_ms",
    "correct",
    "max_ms",
)
_EXPOSURE_COLUMNS = ("exposure_block", "adaptive", "exposure_ms", "shown_ms", "saved_at")
_KIND_WORDS = {"real_or_synthetic": "real or synthetic", "which_is_real": "which is real (2AFC)"}


@dataclass(frozen=True)
class HypeResults:
    """The tables of the HYPE section; each empty when the study has nothing for it."""

    # Per staircase block and reader (`study.stats.hype.THRESHOLD_COLUMNS`).
    thresholds: pd.DataFrame = field(repr=False)
    # Per staircase block: the mean of its readers' thresholds.
    hype_time: pd.DataFrame = field(repr=False)
    # Each staircase trial (`TRIAL_COLUMNS`), in the order each reader answered.
    trials: pd.DataFrame = field(repr=False)
    # Per exposure (untimed first), question kind and reader, then the mean of the readers.
    error_rates: pd.DataFrame = field(repr=False)
    # Per reader and over all readers: how faithfully the timed cases were shown.
    shown: pd.DataFrame = field(repr=False)

    def export_tables(self) -> dict[str, pd.DataFrame]:
        """The tables by export name, empty ones left out."""
        tables = {
            "hype_time": self.hype_time,
            "hype_thresholds": self.thresholds,
            "hype_staircase_trials": self.trials,
            "hype_error_rates": self.error_rates,
            "hype_shown_durations": self.shown,
        }
        return {name: table for name, table in tables.items() if not table.empty}

    def summary(self) -> tuple[str, ...]:
        """The results in plain words: HYPE-time of each staircase block, then the error rates
        of each exposure."""
        return (
            *(_time_sentence(row) for row in self.hype_time.itertuples(index=False)),
            *(
                _error_sentence(row)
                for row in self.error_rates.itertuples(index=False)
                if row.reader == MEAN_OF_READERS
            ),
        )


def block_exposures(settings: Mapping[str, Any]) -> dict[int, Exposure]:
    """The timed blocks of a study's settings by their number in the plan (from 0, as
    `exposure_block` of the tidy frame)."""
    return {
        index: exposure_from_setting(block["exposure"])
        for index, block in enumerate(settings.get("blocks", ()))
        if block.get("exposure")
    }


def _people(tidy: pd.DataFrame) -> pd.DataFrame:
    missing = [column for column in _EXPOSURE_COLUMNS if column not in tidy.columns]
    if missing:
        raise StatsError(f"the answer frame lacks the timed exposure column(s) {missing}")
    if "machine" in tidy.columns:
        tidy = tidy[~tidy["machine"].astype(bool).to_numpy()]
    return tidy


def staircase_trials(tidy: pd.DataFrame, blocks: Mapping[int, Exposure]) -> pd.DataFrame:
    """Every trial of every reader's staircase (`TRIAL_COLUMNS`), numbered from 1 per block
    and reader in the order of their answers' times; `max_ms` from `blocks` (nan when the
    block is not there)."""
    calls = binary_calls(_people(tidy), keep_repeats=True)
    # A case served before its exposure was decided (none should be) is no trial.
    timed = calls["exposure_ms"].notna().to_numpy() & calls["adaptive"].astype(bool).to_numpy()
    calls = calls[timed & calls["question_kind"].isin(REALISM_KINDS).to_numpy()]
    calls = calls.drop_duplicates(["reader", "case_id"], keep="first")
    calls = calls.sort_values(["exposure_block", "reader", "saved_at"], kind="stable")
    index = calls["exposure_block"].astype(int)
    trials = pd.DataFrame(
        {
            "block": index + 1,
            "reader": calls["reader"].astype(str),
            "trial": calls.groupby(["exposure_block", "reader"]).cumcount() + 1,
            "case_id": calls["case_id"],
            "exposure_ms": calls["exposure_ms"].astype(float),
            "correct": calls["correct"].astype(bool),
            "max_ms": [float(blocks[i].max_ms) if i in blocks else np.nan for i in index],
        },
        columns=list(TRIAL_COLUMNS),
    )
    return trials.reset_index(drop=True)


def exposure_calls(tidy: pd.DataFrame) -> pd.DataFrame:
    """The real/synthetic and which-is-real calls on untimed cases and on cases of a fixed
    exposure, with the exposure in words (`exposure`) and in ms (`exposure_ms`, nan untimed)."""
    calls = binary_calls(_people(tidy))
    calls = calls[calls["question_kind"].isin(REALISM_KINDS).to_numpy()]
    untimed = calls["exposure_block"].isna().to_numpy()
    fixed = calls["exposure_ms"].notna().to_numpy() & ~calls["adaptive"].astype(bool).to_numpy()
    calls = calls[untimed | fixed]
    ms = calls["exposure_ms"].astype(float)
    label = ms.map(lambda value: UNTIMED if np.isnan(value) else f"{value:g} ms")
    return calls.assign(exposure=label, exposure_ms=ms)


def error_rates(tidy: pd.DataFrame, *, seed: int, confidence: float = 0.95) -> pd.DataFrame:
    """`study.stats.hype.error_rate_table` per exposure (untimed first, then the fixed
    exposures from the shortest) and question kind."""
    calls = exposure_calls(tidy)
    keys = ["exposure", "exposure_ms", "question_kind"]
    table = error_rate_table(calls, by=keys, seed=seed, confidence=confidence)
    table = table.sort_values("exposure_ms", kind="stable", na_position="first")
    return table.reset_index(drop=True)


def shown_durations(tidy: pd.DataFrame) -> pd.DataFrame:
    """`study.stats.hype.shown_duration_table` of every timed case a reader answered."""
    rows = analysis_rows(_people(tidy), keep_repeats=True)
    rows = rows[rows["exposure_ms"].notna().to_numpy()]
    rows = rows.drop_duplicates(["reader", "case_id"])
    if rows.empty:
        return pd.DataFrame()
    return shown_duration_table(rows)


def hype_tables(
    tidy: pd.DataFrame,
    blocks: Mapping[int, Exposure],
    *,
    seed: int,
    confidence: float = 0.95,
) -> HypeResults | None:
    """The HYPE tables of the answers `tidy` of a study whose timed blocks are `blocks`
    (`block_exposures`); None when it has no timed case and no real/synthetic answer."""
    trials = staircase_trials(tidy, blocks)
    rates = error_rates(tidy, seed=seed, confidence=confidence)
    shown = shown_durations(tidy)
    if trials.empty and rates.empty and shown.empty:
        return None
    thresholds = threshold_table(trials, seed=seed, confidence=confidence)
    return HypeResults(
        thresholds=thresholds,
        hype_time=hype_time_table(thresholds, seed=seed, confidence=confidence),
        trials=trials,
        error_rates=rates,
        shown=shown,
    )


def _of_readers(readers: int, what: str) -> str:
    return f"the one reader's {what}" if readers == 1 else f"the mean of {readers} readers' {what}s"


def _ms_interval(low: float, high: float, readers: int) -> str:
    if np.isnan(low):
        return "one reader: no interval across readers" if readers == 1 else "no interval"
    return f"95% CI {low:.0f}-{high:.0f} ms"


def _time_sentence(row: Any) -> str:
    block = f"Block {row.block}"
    if row.not_reached == row.readers:
        return (
            f"{block}: no reader's threshold was reached within {row.max_ms:g} ms: even at the "
            "longest exposure the readers could not tell real from synthetic three times in "
            "four."
        )
    text = (
        f"{block}: readers told real from synthetic at about {row.hype_time_ms:.0f} ms "
        f"({_ms_interval(row.hype_time_low_ms, row.hype_time_high_ms, row.readers)}; "
        f"HYPE-time, {_of_readers(row.readers, 'threshold')})."
    )
    if row.not_reached:
        text += (
            f" {row.not_reached} of {row.readers} readers did not reach theirs within "
            f"{row.max_ms:g} ms and count at {row.max_ms:g} ms, so the time is a lower bound."
        )
    return text


def _share_interval(low: float, high: float, readers: int) -> str:
    if np.isnan(low):
        return "one reader: no interval across readers" if readers == 1 else "no interval"
    return f"95% CI {low:.0%}-{high:.0%}"


def _error_sentence(row: Any) -> str:
    where = "Untimed" if row.exposure == UNTIMED else f"At {row.exposure}"
    text = (
        f"{where} ({_KIND_WORDS.get(row.question_kind, row.question_kind)}), readers were "
        f"wrong on {row.error_rate:.0%} of their calls "
        f"({_share_interval(row.error_low, row.error_high, row.readers)}, "
        f"{_of_readers(row.readers, 'rate')}; 50% is chance)"
    )
    parts = [
        f"{rate:.0%} of {origin} images"
        for origin, rate in (("real", row.error_rate_real), ("synthetic", row.error_rate_synthetic))
        if not np.isnan(rate)
    ]
    return text + (": " + " and ".join(parts) if parts else "") + "."
