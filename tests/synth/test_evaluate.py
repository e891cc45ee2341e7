"""`python -m synth evaluate` on tiny phantom cohorts (32 px, few epochs, one thread)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study.imaging.canonical import write_canonical_png
from study.imaging.manifest import load_manifest, write_manifest
from study.imaging.types import Origin
from study.stats.roc import delong_auc
from synth.cli import main
from synth.evaluate import (
    c2st,
    conditioning_fidelity,
    evaluate,
    format_table,
    load_image_set,
    memorisation,
    patient_folds,
    reference_split,
)
from synth.phantom import write_phantom

ROOT = Path(__file__).resolve().parents[2]
SIZE = 32
JSON_KEYS = {
    "c2st_auc",
    "c2st_auc_ci",
    "memorised_count",
    "nearest_train_ncc",
    "lesion_agreement",
    "sequence_agreement",
    "lesion_agreement_heldout_real",
    "sequence_agreement_heldout_real",
    "n_real",
    "n_synthetic",
    "n_train",
}

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def subset_manifest(manifest: Path, patients: set[str], name: str) -> Path:
    """A manifest beside `manifest` holding only the rows of `patients`."""
    with manifest.open(newline="") as stream:
        rows = [row for row in csv.DictReader(stream) if row["patient_id"] in patients]
    return write_manifest(manifest.with_name(name), rows)


def synthetic_manifest(folder: Path, images: list[np.ndarray], source: Path | None = None) -> Path:
    """`images` as canonical 16-bit PNGs with a synthetic manifest; labels and pair keys copied
    from the rows of `source` (one per image) when given."""
    folder.mkdir(parents=True)
    labels = [s.row for s in load_manifest(source)] if source else []
    rows = []
    for index, image in enumerate(images):
        write_canonical_png(image, folder / f"{index:04d}.png")
        row = labels[index] if labels else None
        rows.append(
            {
                "path": f"{index:04d}.png",
                "origin": "synthetic",
                "sequence": row.sequence if row else "T2W",
                "lesion": row.lesion if row else None,
                "patient_id": None,
                "pair_key": row.pair_key if row else None,
                "intensity": "canonical",
            }
        )
    return write_manifest(folder / "manifest.csv", rows)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> dict[str, Path]:
    """Phantom halves (4 + 4 patients, 3 slices, 36 images each) and variants of them."""
    root = tmp_path_factory.mktemp("evaluate")
    phantom = write_phantom(root / "phantom", patients=8, seed=21, size=64, slices=3)
    ids = sorted({s.row.patient_id for s in load_manifest(phantom)})
    first = subset_manifest(phantom, set(ids[:4]), "first.csv")
    second = subset_manifest(phantom, set(ids[4:]), "second.csv")
    second_images = [s.canonical for s in load_manifest(second)]
    noise = np.random.default_rng(0).random((36, 64, 64))
    fresh = write_phantom(root / "fresh", patients=2, seed=22, size=64, slices=3)
    return {
        "real": first,
        "same": synthetic_manifest(root / "same", second_images, second),
        "noise": synthetic_manifest(root / "noise", list(noise)),
        "heldout": write_phantom(root / "heldout", patients=8, seed=23, size=64, slices=3),
        "fresh": synthetic_manifest(
            root / "fresh-synthetic", [s.canonical for s in load_manifest(fresh)], fresh
        ),
    }


def test_c2st_is_near_chance_for_two_halves_of_one_cohort(cohort):
    real = load_image_set(cohort["real"], Origin.REAL, SIZE)
    same = load_image_set(cohort["same"], Origin.SYNTHETIC, SIZE)
    auc, (low, high), _ = c2st(real, same, folds=3, epochs=4, seed=0)
    assert 0.25 < auc < 0.75
    assert low < 0.5 < high


def test_c2st_tells_real_from_noise(cohort):
    real = load_image_set(cohort["real"], Origin.REAL, SIZE)
    noise = load_image_set(cohort["noise"], Origin.SYNTHETIC, SIZE)
    auc, (low, high), _ = c2st(real, noise, folds=3, epochs=2, seed=0)
    assert auc > 0.99
    assert low <= auc <= high


def test_memorisation_counts_copies_of_training_images(cohort, tmp_path):
    train = load_image_set(cohort["real"], Origin.REAL, SIZE)
    heldout = load_image_set(cohort["heldout"], Origin.REAL, SIZE)
    fresh = load_image_set(cohort["fresh"], Origin.SYNTHETIC, SIZE)
    copies = [s.canonical for s in load_manifest(cohort["real"])[5:30:6]]
    copied = load_image_set(synthetic_manifest(tmp_path / "copies", copies), Origin.SYNTHETIC, SIZE)

    found = memorisation(heldout, copied, train)
    assert found.memorised_count == len(copies) == 5
    assert found.synthetic.max == pytest.approx(1.0, abs=1e-4)
    assert found.heldout_real.max < 0.999

    clean = memorisation(heldout, fresh, train)
    assert clean.memorised_count == 0
    assert clean.synthetic.max <= clean.heldout_real.max
    assert clean.n_train == len(train) == 36


def test_conditioning_fidelity_is_near_one_for_real_images(cohort):
    real = load_image_set(cohort["heldout"], Origin.REAL, SIZE)
    lesion, sequence = conditioning_fidelity(real, real, epochs=20, seed=0)
    assert lesion.synthetic is not None and lesion.synthetic >= 0.85
    assert sequence.synthetic == pytest.approx(1.0)
    # Scored on the real patients it did not learn from (a patient split of `real`).
    assert sequence.heldout_real is not None and sequence.heldout_real >= 0.95
    assert lesion.heldout_real is not None


def test_fidelity_classifiers_learn_from_training_images_when_given(cohort):
    train = load_image_set(cohort["real"], Origin.REAL, SIZE)
    heldout = load_image_set(cohort["heldout"], Origin.REAL, SIZE)
    fresh = load_image_set(cohort["fresh"], Origin.SYNTHETIC, SIZE)
    _, sequence = conditioning_fidelity(heldout, fresh, train, epochs=20, seed=0)
    assert sequence.synthetic is not None and sequence.synthetic >= 0.95
    assert sequence.heldout_real is not None and sequence.heldout_real >= 0.95


def test_reference_split_keeps_patients_apart(cohort):
    real = load_image_set(cohort["heldout"], Origin.REAL, SIZE)
    fit, scored = reference_split(real, seed=0)
    fit_patients = {real.patient_ids[i] for i in fit}
    scored_patients = {real.patient_ids[i] for i in scored}
    assert not fit_patients & scored_patients
    assert len(fit_patients | scored_patients) == 8
    assert 1 <= len(scored_patients) <= 2  # about one patient in five
    assert sorted([*fit, *scored]) == list(range(len(real)))
    one_patient = real.take(np.flatnonzero(np.array(real.patient_ids) == real.patient_ids[0]))
    assert reference_split(one_patient, seed=0) is None


def test_patient_folds_score_every_patient_once_and_never_split_one(cohort):
    real = load_image_set(cohort["heldout"], Origin.REAL, SIZE)
    patients = np.array(real.patient_ids)
    folds = patient_folds(real, 4, seed=0)
    assert len(folds) == 4
    scored = [set(patients[test]) for _, test in folds]
    assert sum(len(group) for group in scored) == len(set(patients)) == 8
    for fit, test in folds:
        assert set(patients[fit]).isdisjoint(patients[test])
        assert sorted([*fit, *test]) == list(range(len(real)))
    assert (
        reference_split(real, seed=0)[1].tolist() == patient_folds(real, 5, seed=0)[0][1].tolist()
    )


def test_lesion_classifier_sees_the_centre_of_the_field(cohort):
    images = load_image_set(cohort["heldout"], Origin.REAL, SIZE, lesion_size=64, lesion_field=0.5)
    whole = load_image_set(cohort["heldout"], Origin.REAL, SIZE, lesion_size=64, lesion_field=1)
    assert images.images.shape[1:] == (SIZE, SIZE)
    assert images.lesion_images.shape[1:] == (32, 32)
    np.testing.assert_array_equal(images.lesion_images, whole.lesion_images[:, 16:48, 16:48])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--lesion-field", "0"), "--lesion-field 0.0 is not a share of the image"),
        (("--lesion-field", "1.5"), "--lesion-field 1.5 is not a share of the image"),
        (("--lesion-size", "12"), "leaves a crop under 8 pixels"),
    ],
)
def test_bad_lesion_view_is_refused(cohort, capsys, options, message):
    code = main(
        ["evaluate", "--real", str(cohort["real"]), "--synthetic", str(cohort["same"]), *options]
    )
    assert code == 1
    assert message in capsys.readouterr().err


def test_rows_of_the_wrong_origin_are_refused(cohort, capsys):
    code = main(["evaluate", "--real", str(cohort["same"]), "--synthetic", str(cohort["real"])])
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "is not real" in error and "\n" not in error


def test_patients_in_both_real_and_train_are_refused(cohort):
    from synth.errors import SynthError

    with pytest.raises(SynthError, match="held out"):
        evaluate(cohort["real"], cohort["same"], cohort["real"], size=16, folds=2, epochs=1)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "synth", "evaluate", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# JSON output of a quick run: small images, two folds, one epoch.
FAST_JSON = ("--json", "--size", "16", "--folds", "2", "--epochs", "1")


def test_cli_json_without_train_has_null_memorisation_keys(cohort, tmp_path):
    scores = tmp_path / "scores" / "c2st.csv"
    result = run_cli(
        "--real",
        str(cohort["real"]),
        "--synthetic",
        str(cohort["same"]),
        "--scores",
        str(scores),
        *FAST_JSON,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == JSON_KEYS
    assert report["memorised_count"] is None
    assert report["nearest_train_ncc"] is None
    assert report["n_train"] is None
    assert report["n_real"] == report["n_synthetic"] == 36
    low, high = report["c2st_auc_ci"]
    assert 0 <= low <= report["c2st_auc"] <= high <= 1
    assert "evaluate" in result.stderr  # the progress bar
    # Every image's out-of-fold score, named as the importer stores it: their AUC is the C2ST's.
    table = pd.read_csv(scores)
    assert list(table.columns) == ["case_ref", "origin", "source_sha256", "score"]
    expected = [
        (str(s.row.path), str(s.row.origin), s.source_sha256)
        for manifest in (cohort["real"], cohort["same"])
        for s in load_manifest(manifest)
    ]
    assert list(table[["case_ref", "origin", "source_sha256"]].itertuples(index=False)) == [
        tuple(row) for row in expected
    ]
    synthetic = table["origin"] == "synthetic"
    assert delong_auc(table["score"].to_numpy(), synthetic.to_numpy()).auc == pytest.approx(
        report["c2st_auc"], abs=1e-12
    )


def test_cli_json_with_train_fills_memorisation_keys(cohort):
    result = run_cli(
        "--real",
        str(cohort["heldout"]),
        "--synthetic",
        str(cohort["fresh"]),
        "--train",
        str(cohort["real"]),
        *FAST_JSON,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == JSON_KEYS
    assert report["memorised_count"] == 0
    assert report["n_train"] == 36
    assert set(report["nearest_train_ncc"]) == {"synthetic", "heldout_real"}
    for summary in report["nearest_train_ncc"].values():
        assert set(summary) == {"p50", "p95", "max"}
        assert summary["p50"] <= summary["p95"] <= summary["max"] <= 1.0 + 1e-6


def test_table_names_every_measure(cohort):
    evaluation = evaluate(
        cohort["heldout"], cohort["fresh"], cohort["real"], size=16, folds=2, epochs=1
    )
    table = format_table(evaluation)
    for words in ("C2ST AUC", "lesion agreement", "sequence agreement", "held-out real", "copies"):
        assert words in table
