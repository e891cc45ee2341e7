"""Results tables of a study: Table 4.3 of the seed study from answers fed through the
database (in process and through `python -m study report` / `export`), subgroup filters, the
fool-rate table, MRMC against chance, the methods paragraph, agreement and thumbnails."""

from __future__ import annotations

import base64
import doctest
import html
import io
import itertools
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from paper_results import TABLE_4_3
from PIL import Image
from scipy import stats
from seeding import add_assets, grid, pairs
from sqlalchemy import select
from statsmodels.stats.proportion import proportion_confint

from study import plots, reports
from study.analysis import tidy_answers
from study.cli import main
from study.db import make_engine, migrate, transaction
from study.design import (
    QuestionInfo,
    SingleBlock,
    StudyPlan,
    create_study,
    open_study,
    seed_protocol_plan,
)
from study.exports import export_study
from study.imaging.types import Origin, Sequence
from study.models import Case, QuestionKind
from study.questions import LIKERT_5, TEMPLATES, QuestionSpec
from study.readers import add_reader
from study.reading import next_case, record_answer
from study.report.data import read_study
from study.report.html import report_html
from study.report.model import study_report
from study.report.thumbnails import case_thumbnails, read_case_views
from study.reports import (
    Filters,
    ReportError,
    apply_filters,
    build_report,
    filter_choices,
    find_study,
    fool_rate_table,
    methods_text,
    mrmc_summary,
    study_context,
)
from study.stats.agreement import cohen_kappa, pairwise_agreement
from study.stats.mrmc import mrmc_data, obuchowski_rockette
from study.stats.roc import mrmc_long_frame
from study.storage import AssetStore

ROOT = Path(__file__).resolve().parents[2]
STUDY = "Seed protocol"

# Correct answers per group of 16 cases: realism calls by (sequence, lesion), lesion calls by
# (sequence, origin); every other answer in the group is wrong.
CORRECT_CALLS = {("ADC", 1): 10, ("ADC", 0): 8, ("T2W", 1): 11, ("T2W", 0): 9}
CORRECT_LESIONS = {
    ("ADC", "real"): 10,
    ("ADC", "synthetic"): 12,
    ("T2W", "real"): 10,
    ("T2W", "synthetic"): 9,
    ("T2W+DWI", "real"): 9,
    ("T2W+DWI", "synthetic"): 9,
}

FLIP = {"real": "synthetic", "synthetic": "real"}


def seed_study_answers(engine) -> int:
    """The seed protocol (32 T2W, 32 ADC, 32 T2W-DWI pairs) read by one reader whose answers
    give exactly Table 4.3; returns the study id."""
    rows = grid([Sequence.T2W, Sequence.ADC], 8)
    for origin, lesion in itertools.product((Origin.REAL, Origin.SYNTHETIC), (0, 1)):
        rows += pairs(8, origin, lesion)
    add_assets(engine, rows)
    study_id = create_study(engine, seed_protocol_plan(STUDY, seed=7))
    reader = add_reader(engine, study_id, "R1", experience_years=4, specialty="prostate MR")
    open_study(engine, study_id)
    with transaction(engine) as session:
        cases = session.scalars(select(Case).where(Case.study_id == study_id).order_by(Case.id))
        truth = {c.public_id: (c.sequence, str(c.origin), c.lesion) for c in cases}
    seen: dict[tuple, int] = defaultdict(int)
    answers: dict[str, dict[str, str]] = {}
    for public_id, (sequence, origin, lesion) in truth.items():
        given = {}
        if sequence != "T2W+DWI":
            seen[("call", sequence, lesion)] += 1
            right = seen[("call", sequence, lesion)] <= CORRECT_CALLS[(sequence, lesion)]
            given["real_or_synthetic"] = origin if right else FLIP[origin]
        seen[("lesion", sequence, origin)] += 1
        right = seen[("lesion", sequence, origin)] <= CORRECT_LESIONS[(sequence, origin)]
        given["lesion_present"] = "yes" if bool(lesion) == right else "no"
        answers[public_id] = given
    while (view := next_case(engine, reader.reader_id)) is not None:
        values = {q.id: answers[view.public_id][q.kind.value] for q in view.questions}
        record_answer(engine, reader.reader_id, view.public_id, values, 3.0)
    return study_id


def check_table_4_3(cells: pd.DataFrame) -> None:
    assert len(cells) == len(TABLE_4_3)
    for _, cell in cells.iterrows():
        k, n, printed = TABLE_4_3[(cell["task"], cell["data"], cell["subset"])]
        assert (int(cell["k"]), int(cell["n"]), cell["accuracy_shown"]) == (k, n, printed)
        low, high = proportion_confint(k, n, method="wilson")
        assert float(cell["wilson_low"]) == pytest.approx(low, abs=1e-9)
        assert float(cell["wilson_high"]) == pytest.approx(high, abs=1e-9)
        assert float(cell["p_vs_chance"]) == pytest.approx(stats.binomtest(k, n).pvalue)


def test_table_4_3_from_answers_in_the_database(engine, tmp_path) -> None:
    study_id = seed_study_answers(engine)
    tidy = tidy_answers(engine, study_id)
    context = study_context(engine, study_id)
    report = build_report(tidy, seed=context.seed)
    check_table_4_3(report.seed)
    layout = report.seed_layout.set_index(["task", "data"])
    cell = layout.loc[("identification of synthesised images", "ADC"), "overall"]
    assert cell.startswith("18/32 = 0.563 (0.393-0.718), p = 0.597")
    assert layout.loc[("lesion identification, paired", "T2W-DW"), "real"].startswith("9/16")
    # The one reader's per-reader row names its positive class and equals the pooled one.
    per_reader = report.per_reader.set_index(["question_kind", "reader"])
    assert per_reader.loc[("real_or_synthetic", "R1"), "positive_class"] == "synthetic"
    assert per_reader.loc[("lesion_present", "R1"), "correct"] == 22 + 19 + 18

    exported = export_study(engine, study_id, tmp_path / "out", ["csv", "html"])
    assert not exported.skipped
    check_table_4_3(
        pd.read_csv(
            tmp_path / "out" / "tables" / "seed_table_cells.csv", dtype={"accuracy_shown": str}
        )
    )
    page = (tmp_path / "out" / "report.html").read_text()
    assert "18/32 = 0.563 (0.393-0.718)" in page
    assert "R1 (4 years, prostate MR)" in page


@pytest.fixture(scope="module")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    """A SQLite database file holding the seed study and its answers: (URL, study id)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'cli.sqlite3'}"
    engine = make_engine(url)
    migrate(engine)
    study_id = seed_study_answers(engine)
    engine.dispose()
    return url, study_id


def test_report_and_export_commands_give_table_4_3(seeded_database, tmp_path) -> None:
    url, study_id = seeded_database
    env = {**os.environ, "VTT_DATABASE_URL": url, "VTT_DATA_DIR": str(tmp_path / "instance")}

    def study_command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "study", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    out = tmp_path / "report.html"
    done = study_command("report", "--study", STUDY, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    page = out.read_text()
    for (task, data, subset), (k, n, printed) in TABLE_4_3.items():
        assert f"{k}/{n} = {printed}" in page, (task, data, subset)

    done = study_command("export", "--study", str(study_id), "--out", str(tmp_path / "x"))
    assert done.returncode == 0, done.stderr
    written = {Path(line).name for line in done.stdout.split()}
    assert {"answers.csv", "answers.xlsx", "answers.parquet", "tables.xlsx"} <= written
    # Without confidence ratings the default formats skip the ROC files, with a note.
    assert "skipped imrmc" in done.stderr and "ratings.imrmc" not in written
    check_table_4_3(
        pd.read_csv(
            tmp_path / "x" / "tables" / "seed_table_cells.csv", dtype={"accuracy_shown": str}
        )
    )


def test_commands_fail_with_one_clear_line(seeded_database, monkeypatch, capsys) -> None:
    url, study_id = seeded_database
    monkeypatch.setenv("VTT_DATABASE_URL", url)
    asked = ["export", "--study", STUDY, "--out", "unused", "--format", "mrmc"]
    assert main(asked) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1] == "error: could not export mrmc (see above)"
    assert error[-2].startswith("skipped mrmc: no ROC ratings to export")
    assert main(["report", "--study", "no such study", "--out", "unused.html"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: there is no study with id or name 'no such study'; the studies are: "
        f"{STUDY} (id {study_id})"
    )
    assert main(["export", "--out", "unused"]) == 1
    assert "--study" in capsys.readouterr().err


def test_docstring_examples_run() -> None:
    assert doctest.testmod(reports).failed == 0


def test_find_study_by_id_or_name(engine) -> None:
    add_assets(engine, grid([Sequence.T2W], 2))
    plan = StudyPlan("Named", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 8),))
    study_id = create_study(engine, plan)
    assert find_study(engine, str(study_id)).name == "Named"
    assert find_study(engine, " Named ").id == study_id
    with pytest.raises(ReportError, match=r"no study with id or name 'Other'.*Named"):
        find_study(engine, "Other")


# --- frames built in memory ------------------------------------------------------------------


def answers_frame(seed: int = 0, readers: int = 4, cases: int = 24) -> pd.DataFrame:
    """Readers answering real-or-synthetic with confidence, lesion and realism questions."""
    rng = np.random.default_rng(seed)
    origin = np.where(np.arange(cases) % 2 == 0, "synthetic", "real")
    lesion = (np.arange(cases) // 2) % 2
    sequence = np.where(np.arange(cases) < cases // 2, "T2W", "ADC")
    rows = []
    for r, c in itertools.product(range(readers), range(cases)):
        common = {
            "reader": f"R{r}",
            "case_id": c,
            "case_public_id": f"p{c}",
            "origin": origin[c],
            "sequence": sequence[c],
            "lesion": lesion[c],
            "paired": c % 6 == 5,
            "practice": False,
            "repeat": False,
            "correct_side": None,
            "time_s": 2.0,
        }
        right = rng.random() < 0.7
        call = origin[c] if right else ("real" if origin[c] == "synthetic" else "synthetic")
        rows += [
            {**common, "question_kind": "real_or_synthetic", "question_id": 1, "value": call},
            {
                **common,
                "question_kind": "confidence",
                "question_id": 2,
                "value": str(rng.integers(1, 6)),
            },
            {
                **common,
                "question_kind": "lesion_present",
                "question_id": 3,
                "value": rng.choice(["yes", "no"]),
            },
            {
                **common,
                "question_kind": "likert_realism",
                "question_id": 4,
                "value": str(rng.integers(1, 6)),
            },
        ]
    frame = pd.DataFrame(rows)
    frame["lesion"] = frame["lesion"].astype("Int64")
    return frame


def test_filters_choose_subgroups() -> None:
    tidy = answers_frame()
    choices = filter_choices(tidy)
    assert choices["sequences"] == ["ADC", "T2W"]
    assert choices["lesions"] == ["with lesion", "without lesion"]
    assert choices["presentations"] == ["single", "paired"]
    assert choices["readers"] == ["R0", "R1", "R2", "R3"]
    chosen = Filters(sequences=("T2W",), lesions=("with lesion",), readers=("R1", "R2"))
    subset = apply_filters(tidy, chosen)
    assert set(subset["sequence"]) == {"T2W"} and set(subset["lesion"]) == {1}
    assert set(subset["reader"]) == {"R1", "R2"}
    assert len(apply_filters(tidy, Filters(presentations=("paired",)))) == 4 * 4 * 4
    assert chosen.describe() == "sequence T2W; lesion with lesion; reader R1, R2"
    report = build_report(subset, filters=chosen)
    assert report.filters == chosen and report.readers == ("R1", "R2")
    assert set(report.per_reader["reader"]) == {"R1", "R2", "all readers"}


def test_report_holds_every_section_and_says_why_one_is_empty() -> None:
    tidy = answers_frame()
    report = build_report(tidy, seed=3)
    assert not report.notes, report.notes
    assert set(report.subgroups["by_presentation"]["presentation"]) == {"single", "paired"}
    assert list(report.auc["reader"]) == ["R0", "R1", "R2", "R3"]
    assert report.mrmc is not None and len(report.mrmc.table) == 5
    assert set(report.agreement_pairs["question_kind"]) == {
        "real_or_synthetic",
        "lesion_present",
        "likert_realism",
    }
    assert set(report.likert_distribution["origin"]) == {"real", "synthetic"}

    one_reader = build_report(
        tidy[(tidy["reader"] == "R0") & (tidy["question_kind"] != "confidence")]
    )
    assert one_reader.auc.empty and one_reader.mrmc is None
    assert "confidence" in one_reader.notes["roc"]
    assert "two readers" in one_reader.notes["agreement"]


def test_fool_rate_counts_the_readers_each_image_fooled() -> None:
    tidy = answers_frame(readers=3, cases=4)
    calls = {0: ["real", "real", "synthetic"], 1: ["real", "synthetic", "synthetic"]}
    for case, answers in calls.items():
        for reader, answer in enumerate(answers):
            chosen = (
                (tidy["case_id"] == case)
                & (tidy["reader"] == f"R{reader}")
                & (tidy["question_kind"] == "real_or_synthetic")
            )
            tidy.loc[chosen, "value"] = answer
    table = fool_rate_table(tidy).set_index("case_id")
    # Case 0 is synthetic: two of three readers called it real; case 1 is real: two called
    # it synthetic.
    assert table.loc[0, ["readers", "called_real", "fooled"]].tolist() == [3, 2, 2]
    assert table.loc[0, "fool_rate"] == pytest.approx(2 / 3)
    assert table.loc[1, ["called_synthetic", "fooled"]].tolist() == [2, 2]
    assert list(table["fool_rate"]) == sorted(table["fool_rate"], reverse=True)


def test_mrmc_summary_tests_the_mean_auc_against_chance() -> None:
    tidy = answers_frame(seed=1, readers=5, cases=30)
    # One reader skips a case: the analysis keeps the readers who rated every case.
    skipped = (tidy["reader"] == "R4") & (tidy["case_id"] == 7)
    summary = mrmc_summary(tidy[~skipped])
    assert summary.cases_used == 30 and summary.block.cases_left_out == ()
    assert summary.block.readers_left_out == ("R4",)
    assert summary.block.describe() == "left out: reader R4 (did not read every case)"
    long = mrmc_long_frame(tidy[tidy["reader"] != "R4"])
    expected = obuchowski_rockette(mrmc_data(long)).rrrc.treatments["all"]
    assert (summary.fom, summary.se, summary.df) == pytest.approx(
        (expected.fom, expected.se, expected.df)
    )
    t = (expected.fom - 0.5) / expected.se
    assert summary.t == pytest.approx(t)
    assert summary.p_vs_chance == pytest.approx(2 * stats.t.sf(abs(t), expected.df))
    assert summary.table.iloc[-1]["auc_low"] == pytest.approx(expected.low)


def test_pairwise_agreement_equals_cohen_kappa_of_each_pair() -> None:
    tidy = answers_frame(seed=2, readers=5)
    # Readers skip different cases: each pair is compared on the cases both answered.
    tidy = tidy[~((tidy["reader"] == "R1") & (tidy["case_id"] < 5))]
    tidy = tidy[~((tidy["reader"] == "R3") & (tidy["case_id"] > 20))]
    for kind, weights in (("real_or_synthetic", None), ("likert_realism", "quadratic")):
        table = pairwise_agreement(tidy, kind, weights=weights)
        rows = tidy[tidy["question_kind"] == kind]
        labels = sorted(rows["value"].unique(), key=lambda v: (len(v), v))
        wide = rows.pivot(index="case_id", columns="reader", values="value")
        assert len(table) == 10
        for _, row in table.iterrows():
            both = wide[[row["reader_a"], row["reader_b"]]].dropna()
            assert row["n"] == len(both)
            expected = cohen_kappa(both.iloc[:, 0], both.iloc[:, 1], weights=weights, labels=labels)
            assert row["kappa"] == pytest.approx(expected, abs=1e-12)


def test_methods_paragraph_describes_readers_cases_design_and_tests(engine) -> None:
    study_id = seed_study_answers(engine)
    context = study_context(engine, study_id)
    report = build_report(tidy_answers(engine, study_id))
    readers, cases, design, questions, statistics = methods_text(context, report)
    assert "1 reader read" in readers and "R1 (4 years, prostate MR)" in readers
    assert "96 cases were read" in cases and "T2W 32" in cases and "ADC 32" in cases
    assert "synthetic 48" in cases and "with lesion 48" in cases
    assert "32 T2W single images, 50% synthetic, 50% with a lesion" in design
    assert "study seed 7" in design and "could not be changed" in design
    assert "'Real or synthetic?' (Real / Synthetic)" in questions
    # Only the analyses this study's answers allow: one reader, no confidence, no ratings.
    for test in ("Wilson", "Clopper-Pearson", "binomial", "Newcombe"):
        assert test in statistics
    for test in ("DeLong", "Hillis", "Fleiss", "Mann-Whitney", "Intra-reader"):
        assert test not in statistics
    # Without answers to go by, every analysis is described.
    everything = methods_text(context)[-1]
    for test in ("DeLong", "Hillis", "Fleiss", "Mann-Whitney", "Intra-reader", "Newcombe"):
        assert test in everything
    page = html.unescape(report_html(study_report(read_study(engine, study_id))))
    assert design.split(".")[0] in page and statistics in page


def test_case_thumbnails_show_the_viewports_side_by_side(engine, data_dir) -> None:
    store = AssetStore(data_dir / "assets")
    add_assets(engine, grid([Sequence.T2W, Sequence.ADC], 8, patients=8), store=store)
    add_assets(engine, pairs(8, Origin.REAL, 0) + pairs(8, Origin.REAL, 1), store=store)
    add_assets(engine, pairs(8, Origin.SYNTHETIC, 0) + pairs(8, Origin.SYNTHETIC, 1), store=store)
    study_id = create_study(engine, seed_protocol_plan("Thumbs", cases=16))
    with transaction(engine) as session:
        cases = {
            c.kind.value: c.id
            for c in session.scalars(select(Case).where(Case.study_id == study_id))
        }
    with transaction(engine) as session:
        views = read_case_views(session, study_id)
    assert [len(views[cases[kind]]) for kind in ("single", "paired")] == [1, 2]
    urls = case_thumbnails(views, [cases["single"], cases["paired"]], size=24, store=store)
    sizes = {
        kind: Image.open(io.BytesIO(base64.b64decode(urls[cases[kind]].split(",", 1)[1]))).size
        for kind in ("single", "paired")
    }
    assert sizes == {"single": (24, 24), "paired": (48, 24)}


def test_plots_draw_the_intervals_and_counts_of_the_tables() -> None:
    report = build_report(answers_frame(seed=4))
    rows = report.per_reader[report.per_reader["question_kind"] == "real_or_synthetic"]
    forest = plots.accuracy_forest(report.per_reader, "real_or_synthetic")
    points = {
        label: (x, low, high)
        for trace in forest.data
        for label, x, low, high in zip(
            trace.y, trace.x, trace.error_x.arrayminus, trace.error_x.array, strict=True
        )
    }
    for _, row in rows.iterrows():
        x, minus, plus = points[row["reader"]]
        assert x - minus == pytest.approx(row["accuracy_wilson_low"])
        assert x + plus == pytest.approx(row["accuracy_wilson_high"])
    assert [shape.x0 for shape in forest.layout.shapes] == [0.5]
    assert "positive class synthetic" in forest.layout.title.text

    pooled = rows[rows["reader"] == "all readers"].iloc[0]
    matrix = plots.confusion_matrix(pooled)
    assert [list(line) for line in matrix.data[0].z] == [
        [pooled["tp"], pooled["fn"]],
        [pooled["fp"], pooled["tn"]],
    ]
    roc = plots.roc_curves(report.scores, report.auc)
    names = [trace.name for trace in roc.data]
    assert names[0] == "chance" and len(names) == 5
    assert names[1].startswith("R0: AUC ")
    auc = plots.auc_forest(report.auc, report.mrmc)
    assert "mean (OR MRMC)" in [label for trace in auc.data for label in trace.y]


def test_the_mrmc_keeps_the_largest_fully_crossed_block_and_names_what_it_left_out() -> None:
    tidy = answers_frame(seed=5, readers=4, cases=30)
    # Nobody read every case: R0 skipped case 0, R1 cases 1 and 2, R2 and R3 cases 25-29.
    skipped = (
        ((tidy["reader"] == "R0") & (tidy["case_id"] == 0))
        | ((tidy["reader"] == "R1") & tidy["case_id"].isin([1, 2]))
        | (tidy["reader"].isin(["R2", "R3"]) & (tidy["case_id"] >= 25))
    )
    summary = mrmc_summary(tidy[~skipped])
    # R0 and R1 share 27 cases (54 ratings); with R2, 22 cases (66); with R3 too, 22 (88).
    assert summary.block.readers == ("R0", "R1", "R2", "R3") and summary.cases_used == 22
    assert summary.block.describe() == "left out: 8 cases (not read by every reader kept)"
    kept = tidy[~tidy["case_id"].isin([0, 1, 2, 25, 26, 27, 28, 29])]
    expected = obuchowski_rockette(mrmc_data(mrmc_long_frame(kept))).rrrc.treatments["all"]
    assert summary.fom == pytest.approx(expected.fom) and summary.se == pytest.approx(expected.se)


def test_one_reader_with_too_few_cases_keeps_the_auc_table() -> None:
    tidy = answers_frame(seed=6, readers=3, cases=24)
    # R2 read only real images and one synthetic one: an AUC without an interval.
    few = (tidy["reader"] == "R2") & (tidy["origin"] == "synthetic") & (tidy["case_id"] > 0)
    report = build_report(tidy[~few])
    assert report.auc["reader"].tolist() == ["R0", "R1", "R2"]
    assert report.auc.set_index("reader").loc["R2", ["auc_low", "auc_high"]].isna().all()
    assert report.auc_gaps() == (
        "No interval for R2 (1 synthetic, 12 real): DeLong's variance needs at least two "
        "synthetic and two real images rated with confidence."
    )
    # The MRMC keeps the complete readers.
    assert report.mrmc is not None and report.mrmc.block.readers_left_out == ("R2",)
    names = [trace.name for trace in plots.roc_curves(report.scores, report.auc).data]
    assert next(n for n in names if n.startswith("R2: AUC ")).endswith(" (no interval)")


def test_weighted_kappa_of_the_report_uses_the_questions_scale() -> None:
    tidy = answers_frame(seed=7, readers=3, cases=24)
    likert = tidy["question_kind"] == "likert_realism"
    # Nobody rated realism 3 or 5.
    tidy.loc[likert, "value"] = tidy.loc[likert, "value"].replace({"3": "2", "5": "4"})
    questions = [
        QuestionInfo(4, 4, QuestionSpec(QuestionKind.LIKERT_REALISM, "Realistic?", LIKERT_5))
    ]
    pairs = build_report(tidy, questions=questions).agreement_pairs
    shown = pairs[pairs["question_kind"] == "likert_realism"].set_index(["reader_a", "reader_b"])
    rows = tidy[likert]
    expected = pairwise_agreement(
        rows, "likert_realism", weights="linear", labels=["1", "2", "3", "4", "5"]
    ).set_index(["reader_a", "reader_b"])
    used_only = pairwise_agreement(rows, "likert_realism", weights="linear").set_index(
        ["reader_a", "reader_b"]
    )
    assert shown["kappa"].tolist() == pytest.approx(expected["kappa"].tolist(), abs=1e-12)
    assert not np.allclose(shown["kappa"], used_only["kappa"])


def test_report_judges_equivalence_and_calibration_and_exports_them() -> None:
    tidy = answers_frame(seed=8, readers=3, cases=40)
    report = build_report(tidy, margin=0.15)
    equivalence = report.equivalence.set_index("reader")
    assert list(equivalence.index) == [
        "R0",
        "R1",
        "R2",
        "mean of readers (OR, random readers and cases)",
    ]
    assert set(report.equivalence["margin"]) == {0.15} and report.margin == 0.15
    calls = tidy[tidy["question_kind"] == "real_or_synthetic"]
    r0 = calls[calls["reader"] == "R0"]
    right = int((r0["value"] == r0["origin"]).sum())
    assert equivalence.loc["R0", "correct"] == right and equivalence.loc["R0", "n"] == 40
    assert report.calibration["reader"].tolist() == ["R0", "R1", "R2", "all readers"]
    assert len(report.reliability) == 4 * 5
    tables = reports.report_tables(report)
    assert {"equivalence", "calibration", "reliability_bins"} <= set(tables)
    statistics = methods_text(study_context_stub(), report)[-1]
    assert "TOST" in statistics and "readers' mean accuracy" in statistics
    assert "Brier" in statistics
    # Without confidence ratings there is no calibration, and the note says why.
    unrated = build_report(tidy[tidy["question_kind"] != "confidence"])
    assert unrated.calibration.empty and "confidence" in unrated.notes["calibration"]


def study_context_stub() -> reports.StudyContext:
    """A study context with nothing in it (the statistics paragraph needs none)."""
    cases = pd.DataFrame(
        [], columns=["kind", "sequence", "origin", "lesion", "practice", "repeat", "cases"]
    )
    return reports.StudyContext(1, "stub", "open", 0, False, "none", {}, (), cases, ())
