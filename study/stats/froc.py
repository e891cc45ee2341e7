"""Free-response (FROC) reader-study data: the marks of every reader under every treatment,
and the truth of every case, read from two CSV files.

`truth.csv`, one row per case: `case,truth,lesions,weights`
- `truth` 0 (normal) or 1 (abnormal); `lesions` the number of lesions, 0 on a normal case and
  at least 1 on an abnormal one.
- `weights`: the lesion weights of the weighted AFROC, `;`-separated in lesion order (lesion 1
  first); they sum to 1 on each abnormal case (to 1e-6). Empty on a normal case; empty on an
  abnormal case means equal weights (1/lesions each, RJafroc's default).

`marks.csv`, one row per mark: `treatment,reader,case,kind,lesion,rating`
- `kind` `LL` (lesion localisation): the mark is on lesion `lesion` (1..lesions of the case);
  a lesion has at most one LL mark per treatment and reader.
- `kind` `NL` (non-lesion localisation): a mark on no lesion, `lesion` empty; a case can have
  several, with equal ratings or not.
- `rating`: a finite number, higher = more confident.
Treatments and readers are those that occur in `marks.csv` (their natural order); every reader
read every case under every treatment (a fully crossed design), so a case or lesion without a
mark is unmarked, which every figure of merit counts as rated -infinity. Case, treatment and
reader keep their text as written ("01" stays "01"); extra columns are ignored; a blank line
is skipped but still counts in the line numbers of error messages; a row with more or fewer
fields than the header is refused.

Only what the figures of merit need is kept (`FrocData`): per treatment x reader x case the
highest NL rating (-inf: none) and the number of NL marks, and per treatment x reader x lesion
the LL rating (-inf: unmarked). This is RJafroc's dataset layout (Chakraborty 2017), with the
NL marks of a case reduced to their maximum and count.

References
- Chakraborty DP (2017). Observer Performance Methods for Diagnostic Imaging: Foundations,
  Modeling, and Applications with R-Based Examples. CRC Press.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from study.stats import StatsError
from study.stats.mrmc import natural_order

TRUTH_COLUMNS: tuple[str, ...] = ("case", "truth", "lesions", "weights")
MARK_COLUMNS: tuple[str, ...] = ("treatment", "reader", "case", "kind", "lesion", "rating")
WEIGHT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class FrocTruth:
    """The cases in `truth.csv` order: abnormal or not, and their lesions, flat over cases.

    Lesions are in case order, then lesion number: `lesion_case[l]` is the index of the case
    of lesion l, `lesion_weight[l]` its weight.
    """

    cases: tuple[str, ...]
    abnormal: np.ndarray
    lesions: np.ndarray
    lesion_case: np.ndarray
    lesion_weight: np.ndarray


@dataclass(frozen=True)
class FrocData:
    """A fully crossed FROC study: `nl_max[t, r, c]` (highest NL rating, -inf: none),
    `nl_count[t, r, c]` and `ll[t, r, l]` (LL rating of lesion l, -inf: unmarked)."""

    treatments: tuple[str, ...]
    readers: tuple[str, ...]
    truth: FrocTruth
    nl_max: np.ndarray
    nl_count: np.ndarray
    ll: np.ndarray

    @property
    def cases(self) -> tuple[str, ...]:
        return self.truth.cases

    @property
    def abnormal(self) -> np.ndarray:
        return self.truth.abnormal


def _read_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """The `columns` of a CSV as stripped text, indexed by line number (header = its line).

    Header names are compared stripped and lower-cased; blank lines are skipped (they still
    count in the line numbers); a row with more or fewer fields than the header is refused."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as error:
        raise StatsError(f"{path}: no such file") from error
    except (OSError, UnicodeDecodeError) as error:
        raise StatsError(f"{path}: cannot be read ({error})") from error
    reader = csv.reader(io.StringIO(text), skipinitialspace=True, strict=True)
    header: list[str] | None = None
    lines, rows = [], []
    try:
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            if header is None:
                header = [field.strip().lower() for field in fields]
            elif len(fields) != len(header):
                raise StatsError(
                    f"{path}: line {reader.line_num} has {len(fields)} fields, the header "
                    f"{len(header)}"
                )
            else:
                lines.append(reader.line_num)
                rows.append([field.strip() for field in fields])
    except csv.Error as error:
        raise StatsError(
            f"{path}: line {reader.line_num} cannot be read as CSV ({error})"
        ) from error
    if header is None:
        raise StatsError(f"{path}: empty; expected the header {','.join(columns)}")
    missing = [column for column in columns if column not in header]
    if missing:
        raise StatsError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(columns)} "
            f"(extra columns are ignored)"
        )
    repeated = sorted({column for column in columns if header.count(column) > 1})
    if repeated:
        raise StatsError(f"{path}: column(s) {', '.join(repeated)} appear more than once")
    if not rows:
        raise StatsError(f"{path}: no rows below the header")
    frame = pd.DataFrame(rows, columns=header, index=lines, dtype=str)
    return frame[list(columns)]


def _integer(text: str) -> int | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


def _weights(text: str, lesions: int, where: str) -> list[float]:
    if not text:
        return [1 / lesions] * lesions
    parts = [part.strip() for part in text.split(";")]
    try:
        weights = [float(part) for part in parts]
    except ValueError as error:
        raise StatsError(
            f"{where} has weights {text!r}; weights are numbers separated by ';'"
        ) from error
    if len(weights) != lesions:
        raise StatsError(
            f"{where} has {len(weights)} weight(s) for {lesions} lesion(s); give one weight per "
            f"lesion, in lesion order"
        )
    if not all(math.isfinite(w) and w > 0 for w in weights):
        raise StatsError(f"{where} has weights {text!r}; every weight must be positive")
    if abs(sum(weights) - 1) > WEIGHT_TOLERANCE:
        raise StatsError(
            f"{where} has weights summing to {sum(weights):.6g}; a case's weights sum to 1"
        )
    return weights


def froc_truth(frame: pd.DataFrame, source: str) -> FrocTruth:
    """Check the rows of a truth file (text columns case, truth, lesions, weights; the index
    holds line numbers) and arrange them as `FrocTruth`."""
    cases: list[str] = []
    seen: dict[str, int] = {}
    abnormal, lesions, lesion_case, lesion_weight = [], [], [], []
    for line, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        where = f"{source}: line {line}"
        if not row.case:
            raise StatsError(f"{where} has no case")
        if row.case in seen:
            raise StatsError(f"{where} repeats case {row.case} (first on line {seen[row.case]})")
        seen[row.case] = line
        if row.truth not in ("0", "1"):
            raise StatsError(
                f"{where} has truth {row.truth!r}; truth is 1 (abnormal) or 0 (normal)"
            )
        count = _integer(row.lesions)
        if count is None or count < 0:
            raise StatsError(
                f"{where} has lesions {row.lesions!r}; the number of lesions is a whole number >= 0"
            )
        is_abnormal = row.truth == "1"
        if is_abnormal and count == 0:
            raise StatsError(f"{where}: an abnormal case (truth 1) needs at least one lesion")
        if not is_abnormal and count > 0:
            raise StatsError(f"{where}: a normal case (truth 0) has no lesions, not {count}")
        if not is_abnormal and row.weights:
            raise StatsError(f"{where}: a normal case (truth 0) has no lesion weights")
        weights = _weights(row.weights, count, where) if is_abnormal else []
        index = len(cases)
        cases.append(row.case)
        abnormal.append(is_abnormal)
        lesions.append(count)
        lesion_case += [index] * count
        lesion_weight += weights
    return FrocTruth(
        tuple(cases),
        np.array(abnormal, dtype=bool),
        np.array(lesions, dtype=int),
        np.array(lesion_case, dtype=int),
        np.array(lesion_weight, dtype=float),
    )


def froc_data(
    marks: pd.DataFrame,
    truth: FrocTruth,
    source: str,
    *,
    treatments: Sequence[str] | None = None,
    readers: Sequence[str] | None = None,
) -> FrocData:
    """Check the rows of a marks file (text columns treatment, reader, case, kind, lesion,
    rating; the index holds line numbers) against `truth` and arrange them as `FrocData`.

    `treatments` and `readers` default to those that occur in `marks`; given, they also count
    a reader who placed no mark at all, and a mark of anyone else is refused."""
    lines = marks.index.to_numpy()

    def fail(mask: np.ndarray | pd.Series, message: str) -> None:
        """Raise for the first row in `mask`; `message` may name that row's fields in braces."""
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            first = int(np.flatnonzero(mask)[0])
            row = marks.iloc[first].to_dict()
            raise StatsError(f"{source}: line {lines[first]} " + message.format(**row))

    for column in ("treatment", "reader", "case"):
        fail(marks[column] == "", f"has no {column}")
    case_index = {case: i for i, case in enumerate(truth.cases)}
    fail(~marks["case"].isin(case_index), "names case {case}, which is not in the truth file")
    kind = marks["kind"].str.upper()
    fail(~kind.isin(["LL", "NL"]), "has kind {kind!r}; kind is LL (on a lesion) or NL (not)")
    rating = pd.to_numeric(marks["rating"], errors="coerce").to_numpy(dtype=float)
    fail(~np.isfinite(rating), "has rating {rating!r}; ratings are finite numbers")
    is_ll = (kind == "LL").to_numpy()
    fail(~is_ll & (marks["lesion"] != ""), "is an NL mark with lesion {lesion}; leave it empty")
    case = marks["case"].map(case_index).to_numpy(dtype=int)
    lesion = np.array([_integer(text) if text else None for text in marks["lesion"]], dtype=object)
    fail(is_ll & (marks["lesion"] == "").to_numpy(), "is an LL mark without a lesion number")
    bad = is_ll & np.array(
        [n is None or not 1 <= n <= truth.lesions[c] for n, c in zip(lesion, case, strict=True)]
    )
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        count = truth.lesions[case[first]]
        if count == 0:
            raise StatsError(
                f"{source}: line {lines[first]} is an LL mark on case "
                f"{marks['case'].iloc[first]}, a normal case (no lesions); every mark on a "
                f"normal case is NL"
            )
        raise StatsError(
            f"{source}: line {lines[first]} marks lesion {marks['lesion'].iloc[first]!r} of case "
            f"{marks['case'].iloc[first]}, which has {count} lesion(s) (lesions are numbered 1 to "
            f"{count})"
        )

    if treatments is None:
        treatments = natural_order(marks["treatment"])
    if readers is None:
        readers = natural_order(marks["reader"])
    treatments, readers = tuple(treatments), tuple(readers)
    fail(
        ~marks["treatment"].isin(treatments), "names treatment {treatment}, not one of the study's"
    )
    fail(~marks["reader"].isin(readers), "names reader {reader}, not one of the study's")
    t_code = pd.Categorical(marks["treatment"], categories=treatments).codes
    r_code = pd.Categorical(marks["reader"], categories=readers).codes
    shape = (len(treatments), len(readers))

    # LL marks: one per lesion, treatment and reader.
    first_lesion = np.concatenate([[0], np.cumsum(truth.lesions)[:-1]])
    ll_rows = np.flatnonzero(is_ll)
    lesion_code = first_lesion[case[ll_rows]] + lesion[ll_rows].astype(int) - 1
    keys = pd.DataFrame({"t": t_code[ll_rows], "r": r_code[ll_rows], "l": lesion_code})
    repeated = keys.duplicated(keep="first").to_numpy()
    if repeated.any():
        row = ll_rows[int(np.flatnonzero(repeated)[0])]
        marks_row = marks.iloc[row]
        raise StatsError(
            f"{source}: line {lines[row]} is a second LL mark on lesion {marks_row['lesion']} of "
            f"case {marks_row['case']} for treatment {marks_row['treatment']} and reader "
            f"{marks_row['reader']}; a lesion has at most one LL mark per treatment and reader"
        )
    ll = np.full((*shape, len(truth.lesion_case)), -np.inf)
    ll[t_code[ll_rows], r_code[ll_rows], lesion_code] = rating[ll_rows]

    # NL marks: the highest rating and the count per case.
    nl_rows = np.flatnonzero(~is_ll)
    nl_max = np.full((*shape, len(truth.cases)), -np.inf)
    nl_count = np.zeros((*shape, len(truth.cases)), dtype=int)
    where = (t_code[nl_rows], r_code[nl_rows], case[nl_rows])
    np.maximum.at(nl_max, where, rating[nl_rows])
    np.add.at(nl_count, where, 1)
    return FrocData(treatments, readers, truth, nl_max, nl_count, ll)


def read_froc(marks_path: str | Path, truth_path: str | Path) -> FrocData:
    """Read and check `truth.csv` and `marks.csv` (module docstring); errors name the file and
    the line."""
    truth_file, marks_file = Path(truth_path), Path(marks_path)
    truth = froc_truth(_read_csv(truth_file, TRUTH_COLUMNS), str(truth_file))
    return froc_data(_read_csv(marks_file, MARK_COLUMNS), truth, str(marks_file))
