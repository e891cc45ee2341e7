"""`python -m study reproduce`: the seed study's evaluation on a PI-CAI folder, in stages that a
second run skips; the stage runner, the patient split and the manifests it writes; and each
refusal, which names its folder and leaves the database alone."""

from __future__ import annotations

import csv
import doctest
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import study.reproduce.estimates
import study.reproduce.fingerprints
import study.reproduce.manifests
import study.reproduce.split
from study.db import make_engine, transaction
from study.imaging.manifest import read_manifest
from study.imaging.types import Lesion, Origin, Sequence
from study.models import Asset, Case, Study, StudyStatus
from study.reproduce.database import run_pool, seed_study
from study.reproduce.errors import ReproduceError
from study.reproduce.estimates import Work, duration, estimate
from study.reproduce.manifests import write_rows
from study.reproduce.split import split_patients
from study.reproduce.stages import Records, Stage, run_stages
from study.reproduce.synthetic_sets import images_of, sample_requests, seed_runs
from synth.contract import prompt_for
from synth.phantom.picai import write_picai

ROOT = Path(__file__).resolve().parents[2]
STAGES = [
    "prepare",
    "split",
    "train",
    "sample",
    "evaluate",
    "augment",
    "import",
    "study",
    "summary",
]


@pytest.fixture(scope="module")
def picai(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 phantom patients in the PI-CAI layout at 64 px: enough patients with a delineated
    lesion on the chosen slices for the quick size's three folds."""
    return write_picai(tmp_path_factory.mktemp("picai") / "data", patients=24, seed=1, size=64)


def reproduce(home: Path, data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`python -m study reproduce --quick` with its database and assets under `home`. Its
    generator subprocesses run PyTorch on one thread: with the suite's other worker busy on the
    second core, two threads slow each other down several times (docs/benchmarks.md)."""
    env = os.environ | {
        "VTT_DATA_DIR": str(home / "instance"),
        "VTT_DATABASE_URL": f"sqlite:///{home / 'vtt.sqlite3'}",
        "OMP_NUM_THREADS": "1",
    }
    env.pop("VTT_JOB_BROKER", None)
    return subprocess.run(
        [sys.executable, "-m", "study", "reproduce", "--data", str(data), "--quick", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )


def stage_reasons(out: Path) -> dict[str, str]:
    """{stage: why it ran, or 'unchanged'} of the last run, from OUT/timings.json."""
    timings = json.loads((out / "timings.json").read_text())
    return {item["stage"]: item["reason"] for item in timings["stages"]}


@pytest.fixture(scope="module")
def first_run(picai: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One quick reproduction: (home of its database, its output folder)."""
    home = tmp_path_factory.mktemp("reproduce")
    out = home / "out"
    result = reproduce(home, picai, "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return home, out


@pytest.mark.slow
def test_the_quick_size_runs_every_stage_on_the_picai_phantom(
    first_run: tuple[Path, Path], picai: Path
) -> None:
    """Every stage runs once, with an estimate said before it starts; the generator learns from
    one side of a patient split, the study shows only the other side's real slices and this
    run's synthetic images, and the summary holds the machine results."""
    home, out = first_run
    assert stage_reasons(out) == dict.fromkeys(STAGES, "first run")
    log = (out / "timings.json").read_text()
    assert '"size": "quick"' in log

    split = json.loads((out / "split" / "split.json").read_text())
    train, heldout = set(split["train"]["patients"]), set(split["heldout"]["patients"])
    assert not train & heldout
    assert train | heldout == {path.name for path in (picai / "images").iterdir()}
    # At least one held-out patient with a lesion per fold of the augmentation experiment (3).
    assert split["heldout"]["lesion_patients"] >= 3 and split["train"]["lesion_patients"] >= 1
    assert {row.patient_id for row in read_manifest(out / "split" / "train.csv")} == train
    assert {row.patient_id for row in read_manifest(out / "split" / "heldout.csv")} == heldout
    # The checkpoint records how many patients it saw (their salted digests): the training side.
    config = json.loads((out / "train" / "checkpoint" / "config.json").read_text())
    assert config["training"]["patients"]["count"] == len(train)

    with (out / "sample" / "manifest.csv").open(newline="") as handle:
        synthetic = list(csv.DictReader(handle))
    assert len(synthetic) == sum(images_of(seed_runs(8)).values()) == 64
    (checkpoint,) = {row["checkpoint_sha256"] for row in synthetic}
    # Each synthetic DWI is made from a synthetic T2W and shares its pair key.
    t2w_keys = {row["pair_key"] for row in synthetic if row["sequence"] == "T2W"}
    dwi = [row for row in synthetic if row["sequence"] == "DWI"]
    assert len(dwi) == 16 and {row["pair_key"] for row in dwi} <= t2w_keys

    evaluation = json.loads((out / "evaluate" / "result.json").read_text())
    augmentation = json.loads((out / "augment" / "result.json").read_text())
    assert set(augmentation["arms"]) == {"real", "real+synthetic"}
    assert len(augmentation["folds"]) == 3 and augmentation["n_synthetic"] == 64

    engine = make_engine(f"sqlite:///{home / 'vtt.sqlite3'}")
    try:
        with transaction(engine) as session:
            (made,) = session.scalars(select(Study)).all()
            assert made.name == "Seed protocol reproduction"
            assert made.status == StudyStatus.OPEN
            shown = [
                view.asset
                for case in session.scalars(select(Case).where(Case.study_id == made.id))
                for view in case.views
            ]
            real = [a for a in shown if a.origin == Origin.REAL]
            made_here = [a for a in shown if a.origin == Origin.SYNTHETIC]
            assert real and made_here
            assert {a.patient_id for a in real} <= heldout
            assert {a.provenance["checkpoint_sha256"] for a in made_here} == {checkpoint}
            assert not session.scalars(
                select(Asset).where(Asset.patient_id.in_(sorted(train)))
            ).first()
    finally:
        engine.dispose()
    study = json.loads((out / "study" / "study.json").read_text())
    assert study["status"] == "open" and study["cases_per_block"] % 4 == 0

    page = (out / "summary.html").read_text()
    for heading in ("Patient split", "Realism by machine", "Augmentation experiment"):
        assert heading in page
    assert f"{evaluation['c2st_auc']:.3f}" in page
    assert "0.704" in page and "0.762" in page
    assert f"{study['cases_per_block']} cases per block" in page


@pytest.mark.slow
def test_a_second_run_skips_every_stage_and_a_new_name_makes_only_a_new_study(
    first_run: tuple[Path, Path], picai: Path
) -> None:
    home, out = first_run
    summary = (out / "summary.html").read_bytes()
    again = reproduce(home, picai, "--out", str(out))
    assert again.returncode == 0, again.stderr[-3000:]
    assert stage_reasons(out) == dict.fromkeys(STAGES, "unchanged")
    assert "skipped, done before" in again.stderr
    assert (out / "summary.html").read_bytes() == summary

    renamed = reproduce(home, picai, "--out", str(out), "--study-name", "Second reading")
    assert renamed.returncode == 0, renamed.stderr[-3000:]
    reasons = stage_reasons(out)
    assert reasons == dict.fromkeys(STAGES[:7], "unchanged") | {
        "study": "options changed",
        "summary": "inputs changed",
    }
    assert "study 'Second reading'" in renamed.stdout
    engine = make_engine(f"sqlite:///{home / 'vtt.sqlite3'}")
    try:
        with transaction(engine) as session:
            names = set(session.scalars(select(Study.name)))
    finally:
        engine.dispose()
    assert names == {"Seed protocol reproduction", "Second reading"}


def test_a_missing_data_folder_is_named_and_nothing_is_made(tmp_path: Path) -> None:
    result = reproduce(tmp_path, tmp_path / "nowhere", "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert f"error: {tmp_path / 'nowhere'}: does not exist; --data names the PI-CAI folder" in (
        result.stderr
    )
    assert not (tmp_path / "out").exists() and not (tmp_path / "vtt.sqlite3").exists()


def test_too_few_patients_with_a_lesion_stop_at_the_split(tmp_path: Path) -> None:
    """Four patients cannot give three folds a held-out patient with a lesion and the
    generator one to learn from: the split says so, before any training or import."""
    data = write_picai(tmp_path / "data", patients=4, seed=1, size=64)
    result = reproduce(tmp_path, data, "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "patient(s) with a lesion on the chosen slices; the split needs at least 4" in (
        result.stderr
    )
    assert not (tmp_path / "vtt.sqlite3").exists()
    assert not (tmp_path / "out" / "train").exists()


def test_a_study_name_taken_by_another_study_is_refused(engine) -> None:
    with transaction(engine) as session:
        session.add(Study(name="Taken", status=StudyStatus.DRAFT, settings={}))
    with pytest.raises(ReproduceError, match="a study named 'Taken' exists already, built from"):
        seed_study(engine, name="Taken", seed=0, pool=run_pool(("P1",), "abc"), description="test")
    with transaction(engine) as session:
        (study,) = session.scalars(select(Study)).all()
        assert study.status == StudyStatus.DRAFT and study.settings == {}


def test_the_split_holds_out_a_share_of_each_stratum_with_the_seed() -> None:
    lesions = {f"L{i}": 1 + i for i in range(10)} | {f"N{i}": 0 for i in range(20)}
    split = split_patients(lesions, heldout_share=0.2, minimum=3, seed=5)
    assert split == split_patients(lesions, heldout_share=0.2, minimum=3, seed=5)
    assert split != split_patients(lesions, heldout_share=0.2, minimum=3, seed=6)
    heldout = set(split.heldout)
    # 20% of 10 is 2, raised to the minimum 3; 20% of 20 is 4.
    assert sum(p.startswith("L") for p in heldout) == 3
    assert sum(p.startswith("N") for p in heldout) == 4
    assert not heldout & set(split.train) and len(heldout | set(split.train)) == 30
    with pytest.raises(ReproduceError, match="hold 3 patient"):
        split_patients(
            {"L1": 1, "L2": 1, "L3": 1, **{f"N{i}": 0 for i in range(9)}},
            heldout_share=0.2,
            minimum=3,
            seed=0,
        )


def test_the_seed_studys_synthetic_sets_as_requests(tmp_path: Path) -> None:
    """8 per sequence and lesion status for the T2W and ADC blocks, 8 T2W per lesion status
    for the pairs with one DWI made from each; every image has its own seed."""
    runs = seed_runs(8)
    made = images_of(runs)
    assert made == {
        "t2w-lesion": 8,
        "t2w-no-lesion": 8,
        "adc-lesion": 8,
        "adc-no-lesion": 8,
        "pair-t2w-lesion": 8,
        "pair-dwi-lesion": 8,
        "pair-t2w-no-lesion": 8,
        "pair-dwi-no-lesion": 8,
    }
    requests = sample_requests(
        runs, checkpoint=tmp_path / "ckpt", out=tmp_path, seed=100, steps=8, device="cpu"
    )
    seeds = [request.seed for request in requests]
    assert seeds == [100 + 8 * k for k in range(8)]
    dwi = requests[5]
    assert dwi.condition_manifest == tmp_path / "pair-t2w-lesion" / "manifest.csv"
    assert dwi.prompt == prompt_for(Sequence.DWI, Lesion.YES) and dwi.n == 1


def test_write_rows_keeps_chosen_rows_with_their_paths_rebased(tmp_path: Path) -> None:
    source = tmp_path / "prepare" / "manifest.csv"
    source.parent.mkdir()
    (tmp_path / "data").mkdir()
    for name in ("a.png", "b.png"):
        (tmp_path / "data" / name).write_bytes(b"")
    source.write_text(
        "path,origin,sequence,lesion,patient_id\n"
        "../data/a.png,real,T2W,1,P1\n"
        "../data/b.png,real,T2W,0,P2\n"
    )
    target = tmp_path / "split" / "heldout.csv"
    target.parent.mkdir()
    assert write_rows(target, [source], lambda row: row["patient_id"] == "P2") == 1
    with target.open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["path"] == (tmp_path / "data" / "b.png").as_posix()
    assert (row["patient_id"], row["lesion"], row["origin"]) == ("P2", "0", "real")


class Clock:
    """Stages that count their runs."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, bool]] = []


def make_stage(
    clock: Clock,
    folder: Path,
    name: str,
    inputs: Callable[[], dict[str, str]],
    *,
    options: dict[str, Any] | None = None,
    resumable: bool = False,
    fail: bool = False,
) -> Stage:
    output = folder / name / "out.txt"

    def run(resume: bool) -> None:
        clock.runs.append((name, resume))
        output.parent.mkdir(parents=True, exist_ok=True)
        if fail:
            raise KeyboardInterrupt
        output.write_text(json.dumps(inputs()))

    return Stage(
        name=name,
        what=f"make {name}",
        options=options or {},
        inputs=inputs,
        outputs=lambda: [output],
        work=lambda: Work(10, "thing", f"test/{name}"),
        run=run,
        folder=folder / name,
        resumable=resumable,
    )


def test_stages_rerun_only_when_their_inputs_options_or_outputs_change(tmp_path: Path) -> None:
    clock = Clock()
    raw = {"value": "1"}

    def stages(options: dict[str, Any] | None = None) -> list[Stage]:
        first = make_stage(clock, tmp_path, "first", lambda: dict(raw))
        second = make_stage(
            clock,
            tmp_path,
            "second",
            lambda: {"first": (tmp_path / "first" / "out.txt").read_text()},
            options=options,
        )
        return [first, second]

    records = Records(tmp_path)
    times = run_stages(stages(), records)
    assert [(t.name, t.ran, t.reason) for t in times] == [
        ("first", True, "first run"),
        ("second", True, "first run"),
    ]
    assert records.read("second")["rate"]["kind"] == "test/second"

    times = run_stages(stages(), records)
    assert [t.ran for t in times] == [False, False] and len(clock.runs) == 2

    times = run_stages(stages({"n": 2}), records)
    assert [(t.name, t.ran, t.reason) for t in times] == [
        ("first", False, "unchanged"),
        ("second", True, "options changed"),
    ]

    raw["value"] = "2"
    times = run_stages(stages({"n": 2}), records)
    assert [(t.ran, t.reason) for t in times] == [
        (True, "inputs changed"),
        (True, "inputs changed"),
    ]

    (tmp_path / "second" / "out.txt").unlink()
    times = run_stages(stages({"n": 2}), records)
    assert [(t.ran, t.reason) for t in times] == [(False, "unchanged"), (True, "outputs missing")]


def test_an_interrupted_resumable_stage_continues_and_others_start_afresh(tmp_path: Path) -> None:
    clock = Clock()
    records = Records(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_stages([make_stage(clock, tmp_path, "train", dict, resumable=True, fail=True)], records)
    assert records.read("train")["state"] == "running"
    (tmp_path / "train" / "kept.txt").write_text("state saved before the interruption")
    run_stages([make_stage(clock, tmp_path, "train", dict, resumable=True)], records)
    assert clock.runs[-1] == ("train", True)
    assert (tmp_path / "train" / "kept.txt").exists()

    with pytest.raises(KeyboardInterrupt):
        run_stages([make_stage(clock, tmp_path, "sample", dict, fail=True)], records)
    (tmp_path / "sample" / "partial.txt").write_text("half the images")
    times = run_stages([make_stage(clock, tmp_path, "sample", dict)], records)
    assert clock.runs[-1] == ("sample", False) and times[0].reason == "interrupted before"
    assert not (tmp_path / "sample" / "partial.txt").exists()


def test_estimates_use_the_rate_this_folder_measured_for_the_same_work() -> None:
    work = Work(100, "step", "train/cpu/tiny@32/batch16")
    table = estimate(work)
    assert table.seconds == pytest.approx(8.0 + 100 * 0.13)
    assert "100 steps at 0.13 s each, measured on a 2-core x86_64 CPU" in table.text()
    measured = {"kind": work.kind, "seconds_per_unit": 0.5, "start_s": 8.0}
    assert estimate(work, measured).seconds == pytest.approx(58.0)
    other = {"kind": "train/cuda/default@128/batch128", "seconds_per_unit": 0.01, "start_s": 1.0}
    assert estimate(work, other).seconds == table.seconds
    assert estimate(Work(3, "thing", "unknown")).seconds is None
    assert [duration(s) for s in (0.4, 40, 210, 7560, 280000)] == [
        "0.4 s",
        "40 s",
        "3.5 min",
        "2.1 h",
        "3.2 days",
    ]


@pytest.mark.parametrize(
    "module",
    [
        study.reproduce.estimates,
        study.reproduce.fingerprints,
        study.reproduce.manifests,
        study.reproduce.split,
    ],
)
def test_the_examples_in_the_docstrings_hold(module) -> None:
    assert doctest.testmod(module).failed == 0
