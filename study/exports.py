"""Exports of a study's answers and results: files for statisticians, spreadsheets, other
MRMC software, and a standalone HTML report.

- Answers (the tidy frame, one row per reader x case x question, with the option each stored
  value stands for): CSV and Parquet as one file each, and an Excel workbook with readable
  column names and labels, split over several sheets past Excel's row limit.
- Results tables (`study.report.model.export_tables`): one CSV each (zipped for a download) and
  one workbook with a sheet per table.
- Confidence-rated real/synthetic calls as ROC ratings: the long CSV that
  `python -m study mrmc --csv` reads (reader,treatment,case,truth,rating) and the iMRMC input
  format (`.imrmc`: a header with NR, N0, N1, NM, then `BEGIN DATA:` and one
  readerID,caseID,modalityID,score line per rating, truth lines with readerID -1 and
  modalityID 0).
- The HTML report (`study.report.html`): the Results page's sections in one file that opens
  without a network.

Every export of a study starts from one reading of it (`study.report.data.read_study`).
`export_study` writes the chosen formats into a folder (the `python -m study export`
command); `study_downloads` feeds the download buttons of the app.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
from sqlalchemy import Engine

from study.design import QuestionInfo
from study.export_formats import DEFAULT_FORMATS, FORMATS
from study.models import QuestionKind
from study.questions import answer_values, option_label
from study.report.data import StudyData, read_study
from study.report.html import report_html
from study.report.model import export_tables, study_report
from study.reports import (
    KIND_TITLES,
    LESION_LABELS,
    LESION_UNKNOWN,
    ReportError,
    presentation,
)
from study.stats import StatsError
from study.stats.mrmc import natural_order
from study.stats.roc import mrmc_long_frame

EXCEL_MAX_ROWS = 1_048_576  # rows of one worksheet, the header row included
EXCEL_SHEET_NAME_LENGTH = 31

# Readable headers of the answers workbook, in its column order.
ANSWER_HEADERS: dict[str, str] = {
    "reader": "Reader",
    "experience_years": "Experience (years)",
    "case_id": "Case",
    "case_public_id": "Case public id",
    "question_id": "Question id",
    "question_kind": "Question kind",
    "question": "Question",
    "answer_label": "Answer",
    "value": "Answer code",
    "origin": "Origin (truth)",
    "sequence": "Sequence",
    "lesion": "Lesion (truth)",
    "presentation": "Presentation",
    "correct_side": "Real image on the",
    "practice": "Practice case",
    "repeat": "Repeated case",
    "repeat_of": "Repeat of case",
    "time_s": "Time on case (s)",
    "exposure_ms": "Exposure (ms)",
    "shown_ms": "Shown (ms)",
    "revisions": "Revisions",
    "saved_at": "Last saved (UTC)",
}
_WORDS: dict[str, str] = {
    "ppv": "PPV",
    "npv": "NPV",
    "auc": "AUC",
    "cp": "Clopper-Pearson",
    "tp": "TP",
    "fp": "FP",
    "tn": "TN",
    "fn": "FN",
    "se": "SE",
    "df": "df",
    "n": "n",
    "u": "U",
    "p": "p",
    "t": "t",
    "ci": "CI",
    "wilson": "Wilson",
    "fleiss": "Fleiss",
    "or": "OR",
    "hype": "HYPE",
    "abs": "absolute",
}
_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


# --- answers --------------------------------------------------------------------------------


def labelled_answers(tidy: pd.DataFrame, questions: Sequence[QuestionInfo]) -> pd.DataFrame:
    """The tidy frame with `answer_label` after `value`: the option each stored value stands
    for (e.g. 'Synthetic' for 'synthetic', 'Yes' for 'yes', '5' for '5')."""
    labels_of = {
        (q.id, value): option_label(QuestionKind(q.spec.kind), q.spec.options, value)
        for q in questions
        for value in answer_values(QuestionKind(q.spec.kind), q.spec.options)
    }
    labels = [
        labels_of.get((question_id, value), value)
        for question_id, value in zip(tidy["question_id"], tidy["value"], strict=True)
    ]
    out = tidy.copy()
    out.insert(out.columns.get_loc("value") + 1, "answer_label", labels)
    return out


def answers_csv(tidy: pd.DataFrame, questions: Sequence[QuestionInfo]) -> bytes:
    """All answers as one CSV (UTF-8), stored codes and their labels."""
    return labelled_answers(tidy, questions).to_csv(index=False).encode()


def answers_parquet(tidy: pd.DataFrame, questions: Sequence[QuestionInfo]) -> bytes:
    """All answers as one Parquet file, stored codes and their labels."""
    buffer = io.BytesIO()
    labelled_answers(tidy, questions).to_parquet(buffer, index=False)
    return buffer.getvalue()


def _yes_no(column: pd.Series) -> pd.Series:
    return column.fillna(False).astype(bool).map({True: "yes", False: "no"})


def readable_answers(tidy: pd.DataFrame, questions: Sequence[QuestionInfo]) -> pd.DataFrame:
    """The answers for people: readable headers and labels instead of codes (Answer
    'Synthetic', Origin 'synthetic', Lesion 'with lesion', Presentation 'paired'), times in
    UTC."""
    out = labelled_answers(tidy, questions)
    out["presentation"] = presentation(out)
    out["question_kind"] = out["question_kind"].map(KIND_TITLES).fillna(out["question_kind"])
    lesion = pd.to_numeric(out["lesion"], errors="coerce")
    out["lesion"] = lesion.map(LESION_LABELS).fillna(LESION_UNKNOWN)
    out["practice"] = _yes_no(out["practice"])
    out["repeat"] = _yes_no(out["repeat"])
    out["saved_at"] = _utc_naive(pd.to_datetime(out["saved_at"]))
    columns = [c for c in ANSWER_HEADERS if c in out.columns]
    return out[columns].rename(columns=ANSWER_HEADERS)


def _utc_naive(column: pd.Series) -> pd.Series:
    """Times as naive UTC (Excel has no time zones); naive input is taken as UTC already."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert(UTC).dt.tz_localize(None)
    return column


def questions_table(questions: Sequence[QuestionInfo]) -> pd.DataFrame:
    """The questions as asked: id, position, kind, wording, options and stored values."""
    return pd.DataFrame(
        [
            {
                "Question id": q.id,
                "Position": q.position,
                "Kind": KIND_TITLES.get(str(q.spec.kind), str(q.spec.kind)),
                "Question": q.spec.wording,
                "Options": " / ".join(q.spec.options),
                "Required": "yes" if q.spec.required else "no",
                "Case kinds": ", ".join(q.spec.applies_to),
            }
            for q in questions
        ]
    )


# --- Excel ----------------------------------------------------------------------------------


def readable_column(name: str) -> str:
    """A table's column name for people: 'accuracy_wilson_low' -> 'Accuracy Wilson low',
    'ppv' -> 'PPV', 'p_vs_0.5' -> 'p vs 0.5'."""
    words = str(name).split("_")
    text = " ".join(_WORDS.get(word, word) for word in words)
    return text if words[0] in _WORDS else text[:1].upper() + text[1:]


def _sheet_title(name: str, used: set[str]) -> str:
    base = _SHEET_NAME_FORBIDDEN.sub(" ", name).strip() or "sheet"
    title, n = base[:EXCEL_SHEET_NAME_LENGTH], 1
    while title.lower() in used:
        n += 1
        suffix = f" ({n})"
        title = base[: EXCEL_SHEET_NAME_LENGTH - len(suffix)] + suffix
    used.add(title.lower())
    return title


def _cell_rows(frame: pd.DataFrame) -> Iterator[list[object]]:
    """Rows of plain Python values: missing and non-finite numbers become empty cells, times
    naive UTC."""
    columns = []
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            column = _utc_naive(column)
        if pd.api.types.is_float_dtype(column.dtype):
            column = column.where(np.isfinite(column.astype(float)))
        values = column.astype(object).where(column.notna(), None)
        columns.append(
            [v.to_pydatetime() if isinstance(v, pd.Timestamp) else _plain(v) for v in values]
        )
    yield from (list(row) for row in zip(*columns, strict=True))


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def workbook(sheets: Mapping[str, pd.DataFrame]) -> bytes:
    """An .xlsx file with one sheet per table, in order. A table longer than a sheet holds
    (`EXCEL_MAX_ROWS`, header included) continues on sheets named 'name (2)', 'name (3)', ...,
    each with the header again. Sheet names are cut to Excel's 31 characters."""
    per_sheet = EXCEL_MAX_ROWS - 1
    book = openpyxl.Workbook(write_only=True)
    used: set[str] = set()
    for name, frame in sheets.items():
        starts = range(0, max(len(frame), 1), per_sheet)
        for i, start in enumerate(starts):
            title = _sheet_title(name if i == 0 else f"{name} ({i + 1})", used)
            sheet = book.create_sheet(title)
            sheet.append([str(column) for column in frame.columns])
            for row in _cell_rows(frame.iloc[start : start + per_sheet]):
                sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def answers_workbook(tidy: pd.DataFrame, questions: Sequence[QuestionInfo]) -> bytes:
    """The answers for spreadsheets: a sheet 'answers' (continued on 'answers (2)', ... past
    the row limit) and a sheet 'questions'."""
    return workbook(
        {"answers": readable_answers(tidy, questions), "questions": questions_table(questions)}
    )


def tables_workbook(tables: Mapping[str, pd.DataFrame]) -> bytes:
    """The results tables, one sheet each, with readable column names."""
    return workbook(
        {
            name.replace("_", " "): table.rename(columns=readable_column)
            for name, table in tables.items()
        }
    )


def tables_csv_zip(tables: Mapping[str, pd.DataFrame]) -> bytes:
    """The results tables as one CSV each, in a zip archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, table in tables.items():
            archive.writestr(f"{name}.csv", table.to_csv(index=False))
    return buffer.getvalue()


# --- ROC ratings for MRMC software ----------------------------------------------------------


def roc_ratings(tidy: pd.DataFrame) -> pd.DataFrame:
    """The confidence-rated real/synthetic calls in the long format of `python -m study mrmc`
    (reader, treatment 'all', case, truth 1 = synthetic, rating -5..5).

    Raises `ReportError` when the study has none.
    """
    people = tidy[~tidy["machine"].astype(bool)] if "machine" in tidy.columns else tidy
    try:
        long = mrmc_long_frame(people)
    except StatsError as error:
        raise ReportError(f"no ROC ratings to export: {error}") from error
    if long.empty:
        raise ReportError(
            "no ROC ratings to export: no real/synthetic call was rated with a confidence question"
        )
    return long


def mrmc_csv(long: pd.DataFrame) -> bytes:
    """The long CSV of `python -m study mrmc --csv` (reader,treatment,case,truth,rating)."""
    columns = ["reader", "treatment", "case", "truth", "rating"]
    return long[columns].to_csv(index=False).encode()


def _header_text(text: str) -> str:
    """Header lines of an .imrmc file may not hold ':' or ',' (readers of the format look for
    'N0:' and friends anywhere in a header line)."""
    return re.sub(r"[:,\r\n]", " ", text).strip()


def _score(value: float) -> str:
    return f"{value:g}"


def imrmc_text(long: pd.DataFrame, *, title: str) -> str:
    """The iMRMC input file of a long frame (reader, treatment, case, truth, rating).

    Readers and treatments (modalities) are numbered 1.. in their natural order, and the
    header lists what each number stands for; case ids are kept (they are integers). Truth
    lines (reader -1, modality 0, truth 0 or 1) come first, then one line per rating.
    """
    readers = natural_order(long["reader"].astype(str).unique())
    treatments = natural_order(long["treatment"].astype(str).unique())
    reader_id = {r: i + 1 for i, r in enumerate(readers)}
    modality_id = {t: i + 1 for i, t in enumerate(treatments)}
    truth = long.drop_duplicates("case").set_index("case")["truth"].astype(int)
    cases = natural_order(truth.index.astype(str))
    lines = [
        _header_text(title) or "VTT Studio export",
        "",
        "Exported by VTT Studio. Scores are confidence-rated real-or-synthetic calls on ten "
        "levels (-5 surely real ... 5 surely synthetic). Truth 1 = synthetic (signal present)",
        *(f"reader {reader_id[r]} = {_header_text(r)}" for r in readers),
        *(f"modality {modality_id[t]} = {_header_text(t)}" for t in treatments),
        "",
        f"NR: {len(readers)}",
        f"N0: {int((truth == 0).sum())}",
        f"N1: {int((truth == 1).sum())}",
        f"NM: {len(treatments)}",
        "",
        "BEGIN DATA:",
    ]
    lines += [f"-1,{case},0,{int(truth[case])}" for case in cases]
    ordered = long.assign(
        _reader=long["reader"].astype(str).map(reader_id),
        _modality=long["treatment"].astype(str).map(modality_id),
        _case=pd.to_numeric(long["case"], errors="coerce"),
    ).sort_values(["_reader", "_case", "case", "_modality"])
    lines += [
        f"{r},{c},{m},{_score(float(s))}"
        for r, c, m, s in zip(
            ordered["_reader"],
            ordered["case"],
            ordered["_modality"],
            ordered["rating"],
            strict=True,
        )
    ]
    return "\n".join(lines) + "\n"


# --- a whole study into a folder --------------------------------------------------------------


def parse_formats(text: str) -> tuple[str, ...]:
    """'csv,xlsx' -> ('csv', 'xlsx'); `ReportError` naming an unknown format."""
    chosen = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise ReportError(
            f"unknown export format {', '.join(unknown) or '(none given)'}; choose among "
            f"{', '.join(FORMATS)}"
        )
    return chosen


@dataclass(frozen=True)
class ExportResult:
    files: list[Path]
    skipped: dict[str, str]  # format -> why it could not be written


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def export_study(
    engine: Engine,
    study_id: int,
    out_dir: Path,
    formats: Iterable[str] = DEFAULT_FORMATS,
    *,
    on_format: Callable[[str], None] | None = None,
) -> ExportResult:
    """Write the chosen formats of a study into `out_dir`:

    - csv: answers.csv and tables/<table>.csv
    - xlsx: answers.xlsx and tables.xlsx
    - parquet: answers.parquet
    - imrmc: ratings.imrmc; mrmc: ratings_long.csv (both need confidence-rated calls: a study
      without them has these formats in `skipped`, with the reason)
    - html: report.html

    `on_format` is called with each format once it is written (progress).
    """
    chosen = parse_formats(",".join(formats))
    data = read_study(engine, study_id)
    tidy, context = data.answers, data.context
    questions = context.questions
    needs_report = {"csv", "xlsx", "html"} & set(chosen)
    report = study_report(data) if needs_report else None
    tables = export_tables(report) if report is not None else {}
    files: list[Path] = []
    skipped: dict[str, str] = {}
    for name in chosen:
        if name == "csv":
            files.append(_write(out_dir / "answers.csv", answers_csv(tidy, questions)))
            files += [
                _write(out_dir / "tables" / f"{table_name}.csv", table.to_csv(index=False))
                for table_name, table in tables.items()
            ]
        elif name == "xlsx":
            files.append(_write(out_dir / "answers.xlsx", answers_workbook(tidy, questions)))
            files.append(_write(out_dir / "tables.xlsx", tables_workbook(tables)))
        elif name == "parquet":
            files.append(_write(out_dir / "answers.parquet", answers_parquet(tidy, questions)))
        elif name in ("imrmc", "mrmc"):
            try:
                long = roc_ratings(tidy)
            except ReportError as error:
                skipped[name] = str(error)
            else:
                if name == "imrmc":
                    text = imrmc_text(long, title=f"VTT Studio study {context.name}")
                    files.append(_write(out_dir / "ratings.imrmc", text))
                else:
                    files.append(_write(out_dir / "ratings_long.csv", mrmc_csv(long)))
        elif name == "html" and report is not None:
            files.append(_write(out_dir / "report.html", report_html(report)))
        if on_format is not None:
            on_format(name)
    return ExportResult(files, skipped)


# --- downloads in the app ---------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    """One download button: what it offers and a function making the file's bytes (called
    only when the button is clicked). `unavailable` says why it cannot be offered."""

    group: str
    label: str
    file_name: str
    mime: str
    make: Callable[[], bytes]
    unavailable: str = ""


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "study"


def study_downloads(data: StudyData) -> list[Download]:
    """Every export of a study, as the exports page offers them."""
    tidy, questions = data.answers, data.context.questions
    stem = _slug(data.context.name)

    def tables() -> dict[str, pd.DataFrame]:
        return export_tables(study_report(data))

    def report() -> bytes:
        return report_html(study_report(data)).encode()

    try:
        long = roc_ratings(tidy)
        unavailable = ""
    except ReportError as error:
        long, unavailable = pd.DataFrame(), str(error)
    title = f"VTT Studio study {data.context.name}"
    sheet = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return [
        Download(
            "Answers",
            "CSV",
            f"{stem}-answers.csv",
            "text/csv",
            lambda: answers_csv(tidy, questions),
        ),
        Download(
            "Answers",
            "Parquet",
            f"{stem}-answers.parquet",
            "application/vnd.apache.parquet",
            lambda: answers_parquet(tidy, questions),
        ),
        Download(
            "Answers",
            "Excel",
            f"{stem}-answers.xlsx",
            sheet,
            lambda: answers_workbook(tidy, questions),
        ),
        Download(
            "Results tables",
            "CSV (zip)",
            f"{stem}-tables.zip",
            "application/zip",
            lambda: tables_csv_zip(tables()),
        ),
        Download(
            "Results tables",
            "Excel",
            f"{stem}-tables.xlsx",
            sheet,
            lambda: tables_workbook(tables()),
        ),
        Download("Report", "HTML report", f"{stem}-report.html", "text/html", report),
        Download(
            "ROC ratings for MRMC software",
            "iMRMC (.imrmc)",
            f"{stem}.imrmc",
            "text/plain",
            lambda: imrmc_text(long, title=title).encode(),
            unavailable,
        ),
        Download(
            "ROC ratings for MRMC software",
            "Long CSV (python -m study mrmc)",
            f"{stem}-ratings.csv",
            "text/csv",
            lambda: mrmc_csv(long),
            unavailable,
        ),
    ]
