"""`python -m synth augment` on a small phantom cohort (64 px, --quick, one thread): the JSON it
prints, folds that never split a patient, and the refusal of a generator that saw a tested
patient."""

from __future__ import annotations

import csv
import doctest
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import synth.augment
from study.imaging.manifest import write_manifest
from study.imaging.types import Origin
from synth.augment import (
    ARMS,
    METRICS,
    augment,
    format_table,
    labelled,
    paired_difference,
    plan_folds,
)
from synth.checkpoint import checkpoint_sha256
from synth.cli import main
from synth.contract import AugmentRequest, TrainingPatients
from synth.errors import SynthError
from synth.evaluate import load_image_set
from synth.phantom import write_phantom

ROOT = Path(__file__).resolve().parents[2]
FOLD_KEYS = {
    "repeat",
    "fold",
    "test_patients",
    "n_train_real",
    "n_train_synthetic",
    "n_test",
    "steps",
    *ARMS,
}
# The quickest run that trains every classifier: 1 epoch over the real training images.
QUICK = {"quick": True, "epochs": 1, "folds": 3}

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def fake_checkpoint(folder: Path, patients: list[str] | None) -> str:
    """A checkpoint folder as `augment` reads it (config.json and a weight file to hash), with
    `patients` recorded as trained on (None: none recorded); its sha256."""
    folder.mkdir(parents=True)
    training: dict = {"steps": 1, "training_manifest_sha256": "ab" * 32}
    if patients is not None:
        training["patients"] = TrainingPatients.of(patients, salt="ab" * 32).to_json()
    document = {"format": "vtt-synth/1", "model": {"preset": "tiny"}, "training": training}
    (folder / "config.json").write_text(json.dumps(document))
    (folder / "unet.safetensors").write_bytes(folder.name.encode())
    return checkpoint_sha256(folder)


def as_synthetic(
    manifest: Path, name: str, checkpoint: str | None, keep_patients: set[str] = frozenset()
) -> Path:
    """The rows of a phantom manifest as synthetic images made by `checkpoint`, beside it;
    patient ids cleared (images made from a prompt) but for `keep_patients` (images made from
    such a patient's T2W)."""
    with manifest.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    for row in rows:
        row["origin"] = "synthetic"
        row["patient_id"] = row["patient_id"] if row["patient_id"] in keep_patients else ""
        if checkpoint:
            row["generator"] = "vtt-synth-diffusion/tiny"
            row["checkpoint_sha256"] = checkpoint
    return write_manifest(manifest.with_name(name), rows)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> dict[str, Path]:
    """12 real phantom patients (144 images), 6 other phantom patients' images as synthetic,
    and checkpoints: one trained on other patients, one on a real patient, one recording none."""
    root = tmp_path_factory.mktemp("augment")
    real = write_phantom(root / "real", patients=12, seed=3, size=64, slices=4)
    other = write_phantom(root / "other", patients=6, seed=4, size=64, slices=4)
    generators = root / "generators"
    clean = fake_checkpoint(generators / "clean", ["PH1000-0001", "PH1000-0002"])
    leaky = fake_checkpoint(generators / "leaky", ["PH3-0002", "PH1000-0001"])
    unrecorded = fake_checkpoint(generators / "unrecorded", None)
    return {
        "real": real,
        "generators": generators,
        "clean": as_synthetic(other, "clean.csv", clean),
        "leaky": as_synthetic(other, "leaky.csv", leaky),
        "unrecorded": as_synthetic(other, "unrecorded.csv", unrecorded),
        "unnamed": as_synthetic(other, "unnamed.csv", None),
        "unknown": as_synthetic(other, "unknown.csv", "cd" * 32),
    }


def request(cohort: dict[str, Path], synthetic: str, **options) -> AugmentRequest:
    return AugmentRequest(
        real=cohort["real"],
        synthetic=cohort[synthetic],
        **{"generators": cohort["generators"], **QUICK, **options},
    )


@pytest.fixture(scope="module")
def quick_run(cohort) -> dict:
    """`augment --quick --epochs 1 --folds 3 --json`, through the command line."""
    finished = subprocess.run(
        [sys.executable, "-m", "synth", *request(cohort, "clean", json=True).to_args()],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    assert "augment" in finished.stderr  # the progress bar
    return json.loads(finished.stdout)


def test_the_json_object_has_exactly_the_documented_shape(quick_run):
    assert set(quick_run) == {"arms", "difference", "folds", "n_real", "n_synthetic"}
    assert set(quick_run["arms"]) == {"real", "real+synthetic"}
    for arm in quick_run["arms"].values():
        assert set(arm) == {"accuracy", "sensitivity", "specificity", "auc"}
        for summary in arm.values():
            assert set(summary) == {"mean", "sd"}
            assert 0 <= summary["mean"] <= 1 and summary["sd"] >= 0
    assert set(quick_run["difference"]) == set(METRICS)
    for difference in quick_run["difference"].values():
        assert set(difference) == {"mean", "ci"}
        low, high = difference["ci"]
        assert low <= difference["mean"] <= high
    assert (quick_run["n_real"], quick_run["n_synthetic"]) == (144, 72)
    assert [(f["repeat"], f["fold"]) for f in quick_run["folds"]] == [(1, 1), (1, 2), (1, 3)]
    for fold in quick_run["folds"]:
        assert set(fold) == FOLD_KEYS
        assert set(fold["real"]) == set(fold["real+synthetic"]) == set(METRICS)
        assert fold["n_train_real"] + fold["n_test"] == 144
        assert fold["n_train_synthetic"] == 72
        # One pass over the real training images in batches of 16, in both arms.
        assert fold["steps"] == -(-fold["n_train_real"] // 16)
    assert sum(fold["test_patients"] for fold in quick_run["folds"]) == 12


def test_the_arms_summarise_the_folds(quick_run):
    for arm in ARMS:
        for metric in METRICS:
            values = [fold[arm][metric] for fold in quick_run["folds"]]
            assert quick_run["arms"][arm][metric]["mean"] == pytest.approx(np.mean(values))
            assert quick_run["arms"][arm][metric]["sd"] == pytest.approx(np.std(values, ddof=1))
    differences = [f["real+synthetic"]["auc"] - f["real"]["auc"] for f in quick_run["folds"]]
    assert quick_run["difference"]["auc"]["mean"] == pytest.approx(np.mean(differences))


def test_folds_never_split_a_patient_and_keep_a_tested_patients_images_out(cohort):
    real = labelled(load_image_set(cohort["real"], Origin.REAL, 8, lesion_size=64))
    # A synthetic image made from the T2W of real patient PH3-0001 carries that patient's id.
    conditioned = as_synthetic(cohort["real"], "conditioned.csv", None, {"PH3-0001"})
    synthetic = labelled(load_image_set(conditioned, Origin.SYNTHETIC, 8, lesion_size=64))
    patients = np.array(real.patient_ids)
    folds = plan_folds(real, synthetic, folds=3, repeats=2, seed=0)
    assert [(fold.repeat, fold.number) for fold in folds] == [
        (r, k) for r in (1, 2) for k in (1, 2, 3)
    ]
    for repeat in (1, 2):
        tested = [fold.test_patients for fold in folds if fold.repeat == repeat]
        assert sum(len(group) for group in tested) == len(set(patients)) == 12
        assert frozenset().union(*tested) == set(patients)
    for fold in folds:
        assert set(patients[fold.train]).isdisjoint(patients[fold.test])
        assert set(patients[fold.test]) == fold.test_patients
        assert sorted([*fold.train, *fold.test]) == list(range(len(real)))
        added = {synthetic.patient_ids[i] for i in fold.synthetic}
        if "PH3-0001" in fold.test_patients:
            assert "PH3-0001" not in added
        else:
            assert "PH3-0001" in added
    first, second = (
        [fold.test_patients for fold in folds if fold.repeat == repeat] for repeat in (1, 2)
    )
    assert first != second  # each repeat splits with its own seed


def test_a_fold_that_tests_a_generators_training_patient_is_refused(cohort, capsys):
    leaky = request(cohort, "leaky")
    with pytest.raises(SynthError) as refused:
        augment(leaky)
    message = str(refused.value)
    assert "would test 1 patient(s) that checkpoint" in message
    assert str(cohort["generators"] / "leaky") in message
    assert main(leaky.to_args()) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: fold ") and error.count("\n") == 1


@pytest.mark.parametrize(
    ("synthetic", "options", "message"),
    [
        ("unrecorded", {}, "unrecorded does not record its training patients"),
        ("unknown", {}, f"checkpoint {'cd' * 6} is not under"),
        ("clean", {"generators": None}, "is not given (--generators)"),
        ("unnamed", {}, "72 synthetic image(s) name no checkpoint_sha256"),
    ],
)
def test_a_generator_whose_patients_cannot_be_checked_is_refused_unless_allowed(
    cohort, synthetic, options, message
):
    with pytest.raises(SynthError, match="--allow-unrecorded") as refused:
        augment(request(cohort, synthetic, **options))
    assert message in str(refused.value)
    allowed = augment(request(cohort, synthetic, allow_unrecorded=True, **options))
    assert len(allowed.folds) == 3


def test_help_starts_fast_and_bad_input_gives_one_message(cohort):
    started = time.perf_counter()
    shown = subprocess.run(
        [sys.executable, "-m", "synth", "augment", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert time.perf_counter() - started < 1.5
    assert shown.returncode == 0 and "--allow-unrecorded" in shown.stdout
    for arguments, error in (
        (["--folds", "1"], "error: --folds must be at least 2, not 1\n"),
        (["--folds", "13"], "needs at least 13 real patients; --real has 12"),
        (["--lesion-size", "8"], "leaves a crop under 8 pixels"),
    ):
        refused = subprocess.run(
            [
                sys.executable,
                "-m",
                "synth",
                "augment",
                "--real",
                str(cohort["real"]),
                "--synthetic",
                str(cohort["clean"]),
                *arguments,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert refused.returncode == 1
        assert error in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr


def test_real_images_in_the_synthetic_manifest_are_refused(cohort):
    with pytest.raises(SynthError, match="is not synthetic"):
        augment(AugmentRequest(real=cohort["real"], synthetic=cohort["real"], **QUICK))


def test_the_paired_interval_is_students_t_with_the_corrected_variance():
    assert doctest.testmod(synth.augment).failed == 0
    differences = np.array([0.05, -0.02, 0.08, 0.01, 0.03])
    plain = paired_difference(differences, test_to_train=0.0)
    expected = stats.t.interval(
        0.95, 4, loc=differences.mean(), scale=stats.sem(differences, ddof=1)
    )
    assert (plain.low, plain.high) == pytest.approx(expected)
    corrected = paired_difference(differences, test_to_train=0.25)
    widening = np.sqrt((1 / 5 + 0.25) / (1 / 5))
    assert corrected.high - corrected.mean == pytest.approx((plain.high - plain.mean) * widening)


def test_the_table_shows_both_arms_the_difference_and_every_fold(cohort):
    table = format_table(augment(request(cohort, "clean")))
    for words in ("real+synthetic", "difference (95% CI)", "Nadeau & Bengio", "auc r / r+s"):
        assert words in table
    assert len(table.splitlines()) == 2 + len(METRICS) + 3 + 3
