"""`python -m study size`: a ratings CSV as pilot (RJafroc's Van Dyke numbers), a finished
study as pilot (its simulated readers' accuracy and AUC, checked against a computation straight
from the answers and against the same ratings given as a CSV), and bad input refused with one
clear line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from seeding import add_assets, grid

from study.analysis import tidy_answers
from study.cli import main
from study.commands import size
from study.db import make_engine, migrate
from study.demo import DEMO_QUESTIONS
from study.design import SingleBlock, StudyPlan, close_study, create_study, open_study
from study.imaging.types import Sequence
from study.readers import add_reader
from study.reading import next_case, record_answer
from study.reports import find_study, mrmc_summary
from study.simulate import simulate_answers
from study.stats.sizing import DEFAULT_READERS

PILOT = "Pilot VTT"
SOLO = "Solo reading"
NO_CONFIDENCE = "Calls only"
UNFINISHED = "Unfinished reader"
ANSWERS = {"real_or_synthetic": "real", "lesion_present": "no", "confidence": "3"}


def answered_study(
    engine, name: str, readers: int, *, questions=DEMO_QUESTIONS, unfinished: int = 0
) -> int:
    """A closed study of 16 T2W cases read by `readers` simulated readers, and by one more
    reader who answered only `unfinished` cases (none: no such reader)."""
    study_id = create_study(
        engine, StudyPlan(name, questions, (SingleBlock(Sequence.T2W, 16),), seed=5)
    )
    for number in range(1, readers + 1):
        add_reader(engine, study_id, f"{name} reader {number}")
    open_study(engine, study_id)
    simulate_answers(engine, study_id, seed=study_id)
    if unfinished:
        late = add_reader(engine, study_id, "late reader").reader_id
        for _ in range(unfinished):
            view = next_case(engine, late)
            values = {q.id: ANSWERS[q.kind.value] for q in view.questions}
            record_answer(engine, late, view.public_id, values, 5.0)
    close_study(engine, study_id)
    return study_id


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database with a pilot (4 readers), a one-reader study, a study without
    confidence ratings and one with a reader who stopped after 4 cases, all closed; returns
    its URL."""
    url = f"sqlite:///{tmp_path_factory.mktemp('size') / 'size.sqlite3'}"
    engine = make_engine(url)
    migrate(engine)
    add_assets(engine, grid([Sequence.T2W], 4))
    answered_study(engine, PILOT, 4)
    answered_study(engine, SOLO, 1)
    answered_study(engine, NO_CONFIDENCE, 2, questions=DEMO_QUESTIONS[:1])
    answered_study(engine, UNFINISHED, 3, unfinished=4)
    engine.dispose()
    return url


@pytest.fixture
def study_db(database: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("VTT_DATABASE_URL", database)
    return database


def size_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["size", *args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one error line of a refused `size` command."""
    assert main(["size", *args]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_the_command_offers_the_metrics_and_readers_of_the_library() -> None:
    """The command's defaults are the library's (it keeps them light: no numpy at --help)."""
    parser = argparse.ArgumentParser()
    size.register(parser.add_subparsers())
    args = parser.parse_args(["size", "--pilot", PILOT])
    assert (tuple(args.readers), args.metric, args.power, args.alpha, args.effect) == (
        DEFAULT_READERS,
        "accuracy",
        0.8,
        0.05,
        None,
    )


def test_van_dyke_csv_gives_rjafrocs_cases(shared_data: Path, capsys) -> None:
    csv = shared_data / "mrmc" / "vandyke.csv"
    document = size_json(capsys, "--pilot", str(csv), "--metric", "auc", "--readers", "6", "10")
    pilot = document["pilot"]
    assert (pilot["n_readers"], pilot["n_cases"], pilot["metric"]) == (5, 114, "auc")
    assert pilot["variance_components"]["cov2"] == pytest.approx(0.00034407483, abs=5e-12)
    # No --effect: the observed one, treatment 0 minus 1 (-0.0438), in size.
    assert document["effect"] == pytest.approx(0.043800322, abs=5e-10)
    six, ten = document["table"]
    assert (six["readers"], six["rrrc"]["cases"]) == (6, 251)
    assert (ten["rrrc"]["cases"], ten["frrc"]["cases"], ten["rrfc"]["cases"]) == (163, 131, 53)
    assert ten["rrrc"]["power"] == pytest.approx(0.8015625, abs=5e-8)
    document = size_json(
        capsys, "--pilot", str(csv), "--metric", "auc", "--effect", "0.05", "--readers", "3"
    )
    (three,) = document["table"]
    assert three["rrrc"]["cases"] is None and "add readers" in three["rrrc"]["reason"]
    assert three["frrc"]["cases"] is not None


def test_csv_accuracy_and_the_readable_report(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(8)
    truth = rng.integers(0, 2, 40)
    rows = [
        {"reader": f"R{j}", "treatment": "A", "case": k, "truth": truth[k], "rating": rating}
        for j in range(3)
        for k in range(40)
        for rating in [int(truth[k] if rng.random() < 0.7 + 0.05 * j else 1 - truth[k])]
    ]
    csv = tmp_path / "calls.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    document = size_json(
        capsys, "--pilot", str(csv), "--metric", "accuracy", "--threshold", "1", "--effect", "0.2"
    )
    accuracy = pd.DataFrame(rows).assign(correct=lambda f: f["truth"] == f["rating"])
    by_reader = accuracy.groupby("reader")["correct"].mean()
    assert document["pilot"]["readers"]["A"] == pytest.approx(by_reader.to_dict(), abs=1e-15)
    assert document["pilot"]["compared_with"] == 0.5
    assert [row["readers"] for row in document["table"]] == list(DEFAULT_READERS)
    assert "mean accuracy" in document["summary"] and "0.700 against chance" in document["summary"]

    assert main(["size", "--pilot", str(csv), "--metric", "accuracy", "--threshold", "1"]) == 0
    report = capsys.readouterr().out
    assert "OR variance components of the pilot: Var(R)" in report
    assert "Cov1" not in report  # not estimable with one treatment
    assert report.splitlines()[3].split()[0] == "readers"


def pilot_from_answers_directly(tidy: pd.DataFrame) -> dict[str, float]:
    """Var(R), Cov2 and Var(Error) of the readers' real/synthetic accuracy, straight from the
    answers: per reader, the accuracy with each case left out; jackknife covariances
    (c-1)/c sum (..)(..) over the cases that every reader read."""
    calls = tidy[(tidy["question_kind"] == "real_or_synthetic") & ~tidy["practice"].astype(bool)]
    calls = calls[~calls["repeat"].astype(bool)]
    correct = (calls["value"] == calls["origin"]).astype(float)
    table = calls.assign(correct=correct).pivot(index="reader", columns="case_id", values="correct")
    table = table.dropna(axis=1).to_numpy()
    readers, c = table.shape
    left_out = (table.sum(axis=1, keepdims=True) - table) / (c - 1)
    centred = left_out - left_out.mean(axis=1, keepdims=True)
    covariance = (c - 1) / c * centred @ centred.T
    var_error = float(np.diag(covariance).mean())
    cov2 = float(covariance[~np.eye(readers, dtype=bool)].mean())
    ms_r = float(table.mean(axis=1).var(ddof=1))
    return {"var_r": ms_r - var_error + cov2, "cov2": cov2, "var_error": var_error}


def test_a_study_pilot_sizes_its_readers_accuracy_against_chance(
    study_db: str, tmp_path: Path, capsys
) -> None:
    document = size_json(capsys, "--pilot", PILOT, "--effect", "0.1", "--readers", "4", "8")
    pilot = document["pilot"]
    assert (pilot["source"], pilot["metric"], pilot["n_readers"]) == (
        f"study '{PILOT}'",
        "accuracy",
        4,
    )
    assert (pilot["n_cases"], pilot["left_out"]) == (16, "")
    engine = make_engine(study_db)
    study_id = find_study(engine, PILOT).id
    tidy = tidy_answers(engine, study_id)
    expected = pilot_from_answers_directly(tidy)
    components = pilot["variance_components"]
    for name, value in expected.items():
        assert components[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name
    assert components["var_tr"] is None and components["cov1"] is None
    assert "a mean accuracy of 0.600 against chance (0.5)" in document["summary"]
    assert [row["readers"] for row in document["table"]] == [4, 8]

    # The same calls as a ratings CSV (1 = called synthetic) give the same sizing.
    calls = tidy[tidy["question_kind"] == "real_or_synthetic"]
    csv = tmp_path / "calls.csv"
    pd.DataFrame(
        {
            "reader": calls["reader"],
            "treatment": "all",
            "case": calls["case_id"],
            "truth": (calls["origin"] == "synthetic").astype(int),
            "rating": (calls["value"] == "synthetic").astype(int),
        }
    ).to_csv(csv, index=False)
    from_csv = size_json(
        capsys,
        *("--pilot", str(csv), "--metric", "accuracy", "--threshold", "1"),
        *("--effect", "0.1", "--readers", "4", "8"),
    )
    assert from_csv["table"] == document["table"]
    assert from_csv["pilot"]["variance_components"] == pytest.approx(components)

    # AUC: the components of the Results page's MRMC analysis of the same study.
    document = size_json(capsys, "--pilot", str(study_id), "--metric", "auc", "--effect", "0.1")
    reference = mrmc_summary(tidy).result.components
    components = document["pilot"]["variance_components"]
    for name in ("var_r", "cov2", "var_error"):
        assert components[name] == pytest.approx(getattr(reference, name), rel=1e-12), name


def test_a_reader_who_did_not_finish_is_left_out_and_named(study_db: str, capsys) -> None:
    for metric in ("accuracy", "auc"):
        document = size_json(capsys, "--pilot", UNFINISHED, "--metric", metric, "--effect", "0.1")
        pilot = document["pilot"]
        assert (pilot["n_readers"], pilot["n_cases"]) == (3, 16)
        assert pilot["left_out"] == "left out: reader late reader (did not read every case)"
        assert "(left out: reader late reader (did not read every case))" in document["summary"]


def test_bad_input_gets_one_clear_line(study_db: str, tmp_path: Path, capsys) -> None:
    line = refused(capsys, "--pilot", "no such study")
    assert line.startswith("error: there is no study with id or name 'no such study'; the studies")
    assert refused(capsys, "--pilot", SOLO) == (
        f"error: study '{SOLO}': a pilot needs at least two readers (their spread is the reader "
        "variance); it has 1"
    )
    assert refused(capsys, "--pilot", NO_CONFIDENCE, "--metric", "auc") == (
        f"error: study '{NO_CONFIDENCE}': no real-or-synthetic question was rated with "
        "confidence, so there is no AUC to size from"
    )
    for effect in ("0", "-0.05"):
        assert refused(capsys, "--pilot", PILOT, "--effect", effect) == (
            f"error: --effect must be a positive number, not {float(effect):g}"
        )
    assert refused(capsys, "--pilot", PILOT, "--effect", "0.6") == (
        "error: the effect (the accuracy to detect minus chance (0.5)) must lie in (0, 0.5], "
        "not 0.6"
    )
    for power in ("0", "1", "1.5"):
        assert refused(capsys, "--pilot", PILOT, "--power", power) == (
            f"error: --power must lie strictly between 0 and 1, not {float(power):g}"
        )
    assert refused(capsys, "--pilot", PILOT, "--threshold", "1") == (
        "error: --threshold applies to a ratings CSV; a study's calls are already binary"
    )
    missing = tmp_path / "missing.csv"
    assert refused(capsys, "--pilot", str(missing), "--metric", "auc") == (
        f"error: {missing}: no such file"
    )
    assert refused(capsys, "--pilot", str(missing)) == (
        f"error: {missing}: --metric accuracy needs --threshold T (a rating >= T is a positive "
        "call)"
    )
