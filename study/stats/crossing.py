"""The fully crossed block of an incomplete reader x case design.

An Obuchowski-Rockette analysis (`study.stats.mrmc`) needs every reader to have read every
case. While a study is being read, or when a reader skips cases, the answers are not fully
crossed, and some readers or cases have to be left out. Which ones, by these rules:

1. Complete readers first. When at least two readers read every case that anyone read, those
   readers and every case are kept; the incomplete readers are left out. Readers who have not
   finished are the usual reason for gaps, and leaving them out keeps every case (dropping
   cases instead would throw away the complete readers' work, and the cases kept would be a
   selection that depends on the order in which the others happened to read).
2. Otherwise the largest block. Readers are ranked by how many cases they read (ties in their
   natural order); for every k from 2 up, the k first readers and the cases all of them read
   form a fully crossed block. The block with the most readings (k times its cases) is kept;
   among equally large blocks the one with fewer readers, so again readers are dropped before
   cases. Finding the largest block over every subset of readers is the maximum edge biclique
   problem, which is NP-complete (Peeters 2003): this nested search is a greedy approximation
   that costs one pass over the readers.

Whatever is left out is named (`CrossedBlock.describe`), and the reports say so.

References
- Obuchowski NA, Rockette HE (1995). Hypothesis testing of diagnostic accuracy for multiple
  readers and multiple tests: an ANOVA approach with dependent observations. Communications in
  Statistics - Simulation and Computation 24:285-308 (the fully crossed design).
- Peeters R (2003). The maximum edge biclique problem is NP-complete. Discrete Applied
  Mathematics 131:651-654.

Example (R3 skipped case c2; R1 and R2 read everything):
    >>> pairs = pd.DataFrame({"reader": ["R1", "R1", "R2", "R2", "R3"],
    ...                       "case": ["c1", "c2", "c1", "c2", "c1"]})
    >>> crossed_block(pairs).describe()
    'left out: reader R3 (did not read every case)'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from study.stats import StatsError
from study.stats.mrmc import natural_order


@dataclass(frozen=True)
class CrossedBlock:
    """The readers and cases kept (every reader read every case), and those left out."""

    readers: tuple[str, ...]
    cases: tuple[str, ...]
    readers_left_out: tuple[str, ...]
    cases_left_out: tuple[str, ...]

    def describe(self) -> str:
        """What was left out, in words ('' when nothing was)."""
        parts = []
        if self.readers_left_out:
            word = "reader" if len(self.readers_left_out) == 1 else "readers"
            parts.append(f"{word} {', '.join(self.readers_left_out)} (did not read every case)")
        if self.cases_left_out:
            count = len(self.cases_left_out)
            parts.append(f"{count} case{'' if count == 1 else 's'} (not read by every reader kept)")
        return f"left out: {'; '.join(parts)}" if parts else ""


def crossed_block(
    pairs: pd.DataFrame, *, reader: str = "reader", case: str = "case"
) -> CrossedBlock:
    """The fully crossed block of the (reader, case) readings in `pairs`, chosen by the rules
    of the module docstring. Reader and case names are compared as text.

    Raises `StatsError` with fewer than two readers, or when no two readers read a common case.
    """
    missing = [column for column in (reader, case) if column not in pairs.columns]
    if missing:
        raise StatsError(f"the readings lack column(s) {', '.join(missing)}")
    readers = natural_order(pairs[reader].astype(str).unique())
    cases = natural_order(pairs[case].astype(str).unique())
    if len(readers) < 2:
        raise StatsError(f"a fully crossed block needs at least two readers, not {len(readers)}")
    read = np.zeros((len(readers), len(cases)), dtype=bool)
    read[
        pd.Categorical(pairs[reader].astype(str), categories=readers).codes,
        pd.Categorical(pairs[case].astype(str), categories=cases).codes,
    ] = True
    complete = read.all(axis=1)
    if complete.sum() >= 2:
        kept_readers = complete
        kept_cases = np.ones(len(cases), dtype=bool)
    else:
        # Most cases read first; a stable sort keeps the natural order among ties.
        ranked = np.argsort(-read.sum(axis=1), kind="stable")
        common = read[ranked[0]].copy()
        best_k, best_cases, best_size = 0, common, 0
        for k in range(2, len(readers) + 1):
            common &= read[ranked[k - 1]]
            size = k * int(common.sum())
            if size > best_size:
                best_k, best_cases, best_size = k, common.copy(), size
        if best_size == 0:
            raise StatsError(
                "no two readers read a common case, so there is no fully crossed block"
            )
        kept_readers = np.zeros(len(readers), dtype=bool)
        kept_readers[ranked[:best_k]] = True
        kept_cases = best_cases
    reader_names, case_names = np.array(readers, dtype=object), np.array(cases, dtype=object)
    return CrossedBlock(
        readers=tuple(reader_names[kept_readers]),
        cases=tuple(case_names[kept_cases]),
        readers_left_out=tuple(reader_names[~kept_readers]),
        cases_left_out=tuple(case_names[~kept_cases]),
    )
