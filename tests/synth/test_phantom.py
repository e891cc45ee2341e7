"""The phantom: determinism, lesion ground truth, anatomy, file formats (its own layout and
PI-CAI's) and command line."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image
from scipy import ndimage, stats

from study.imaging import Lesion, load_manifest
from synth.phantom import (
    PhantomError,
    PhantomPatient,
    Tissue,
    make_patient,
    write_phantom,
)
from synth.phantom.mri import acquisition_spread_px
from synth.phantom.picai import picai_case, write_picai
from synth.phantom.writer import has_lesion, patient_seed

ROOT = Path(__file__).resolve().parents[2]
IN_PLANE = np.ones((1, 3, 3), dtype=bool)  # neighbours within a slice, never across slices
SEQUENCES = ("t2w", "adc", "dwi")
# Seeds whose lesions fall in the peripheral zone (0) and in the transition zone (5, 12).
LESION_SEEDS = (0, 5, 12)


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """`mask` grown by `pixels` in-plane (square neighbourhood, as the resampling reaches)."""
    return ndimage.binary_dilation(mask, IN_PLANE, iterations=pixels) if pixels else mask


def shrink(mask: np.ndarray, pixels: int) -> np.ndarray:
    return ndimage.binary_erosion(mask, IN_PLANE, iterations=pixels)


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.*")}


def read_manifest(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "cohort"
    write_phantom(out, patients=4, seed=3, size=64, slices=6)
    return out


@pytest.fixture(scope="module")
def with_and_without() -> dict[int, tuple[PhantomPatient, dict[int, PhantomPatient]]]:
    """Per seed: the patient without a lesion, and with one of each PI-RADS category."""
    return {
        seed: (
            make_patient(seed, size=128, lesion=False),
            {
                pirads: make_patient(seed, size=128, lesion=True, pirads=pirads)
                for pirads in (3, 4, 5)
            },
        )
        for seed in LESION_SEEDS
    }


# Determinism


def test_same_seed_writes_identical_files(cohort: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    write_phantom(again, patients=4, seed=3, size=64, slices=6)
    assert files(again) == files(cohort)


def test_other_seed_writes_other_images(cohort: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_phantom(other, patients=4, seed=4, size=64, slices=6)
    first, second = files(cohort), files(other)
    # Same layout, patient ids carrying the seed: PH3-0001 here is PH4-0001 there.
    renamed = {name.replace("PH3-", "PH4-"): data for name, data in first.items()}
    assert renamed.keys() == second.keys()
    pngs = [name for name in renamed if name.endswith(".png")]
    assert all(renamed[name] != second[name] for name in pngs)


def test_patient_is_the_same_whatever_the_cohort_size(cohort: Path, tmp_path: Path) -> None:
    single = tmp_path / "single"
    write_phantom(single, patients=1, seed=3, size=64, slices=6)
    one, four = files(single), files(cohort)
    assert one.keys() <= four.keys()
    assert all(one[name] == four[name] for name in one if name != "manifest.csv")
    _, rows_one = read_manifest(single / "manifest.csv")
    _, rows_four = read_manifest(cohort / "manifest.csv")
    assert rows_one == rows_four[: len(rows_one)]


def test_make_patient_is_deterministic() -> None:
    first, second = make_patient(11, size=64), make_patient(11, size=64)
    for name in (*SEQUENCES, "tissue", "prostate", "lesion"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert not np.array_equal(first.t2w, make_patient(12, size=64).t2w)


# The lesion: what it changes, and only that


def test_lesion_seeds_cover_both_zones(with_and_without) -> None:
    zones = {with_[5].lesion_zone for _, with_ in with_and_without.values()}
    assert zones == {"PZ", "TZ"}


@pytest.mark.parametrize("seed", LESION_SEEDS)
@pytest.mark.parametrize("pirads", [3, 4, 5])
def test_lesion_changes_nothing_outside_its_reach(with_and_without, seed: int, pirads: int) -> None:
    """What "nothing else" means, exactly: the lesion's partial-volume rim reaches 2 pixels
    beyond its mask; on T2W (acquired on the grid) nothing changes further out, and on ADC and
    DWI (acquired coarser, then interpolated) nothing further than that plus the acquisition's
    reach. Beyond those, images are bit-for-bit equal, and so is all ground truth but the
    lesion's.
    """
    without, with_ = with_and_without[seed][0], with_and_without[seed][1][pirads]
    for name in ("prostate", "pz", "tz"):
        np.testing.assert_array_equal(getattr(with_, name), getattr(without, name))
    assert np.all(with_.lesion[with_.tissue != without.tissue])
    assert not without.lesion.any() and without.pirads is None and without.lesion_zone is None

    rim = grow(with_.lesion, 2)
    reach = {"t2w": rim, "adc": grow(rim, acquisition_spread_px(128))}
    reach["dwi"] = reach["adc"]
    for name in SEQUENCES:
        changed = getattr(with_, name) != getattr(without, name)
        assert changed[with_.lesion].mean() > 0.9, f"{name}: the lesion barely shows"
        assert not changed[~reach[name]].any(), f"{name}: changed outside the lesion's reach"


@pytest.mark.parametrize("seed", LESION_SEEDS)
def test_lesion_contrast_has_the_right_sign_and_grows_with_pirads(with_and_without, seed: int):
    """Relative change of the mean against the same patient without the lesion: T2W and ADC
    fall, DWI rises, in each category's own mask; on the core that all three categories share
    (same anatomy, same pixels), the change grows strictly from PI-RADS 3 to 5."""
    without, with_ = with_and_without[seed]
    core = with_[3].lesion & with_[4].lesion & with_[5].lesion
    assert core.sum() >= 5

    def change(patient: PhantomPatient, name: str, where: np.ndarray) -> float:
        before = getattr(without, name)[where].mean()
        return float((getattr(patient, name)[where].mean() - before) / before)

    for patient in with_.values():
        assert change(patient, "t2w", patient.lesion) < -0.05
        assert change(patient, "adc", patient.lesion) < -0.1
        assert change(patient, "dwi", patient.lesion) > 0.15
    for name, sign in (("t2w", -1), ("adc", -1), ("dwi", 1)):
        margins = [sign * change(with_[pirads], name, core) for pirads in (3, 4, 5)]
        assert 0 < margins[0] < margins[1] < margins[2], f"{name}: {margins}"


def test_lesion_adc_falls_with_pirads_in_the_documented_range(with_and_without) -> None:
    """Tumours have an ADC of 600-1000 x 10^-6 mm^2/s, lower for higher PI-RADS. The coarse
    DWI acquisition blurs small lesions towards their zone's value, so the range is checked
    on PI-RADS 5 lesions, which are at least 15 mm across."""
    for without, with_ in with_and_without.values():
        core = with_[3].lesion & with_[4].lesion & with_[5].lesion
        medians = [float(np.median(with_[pirads].adc[core])) for pirads in (3, 4, 5)]
        assert float(np.median(without.adc[core])) > medians[0] > medians[1] > medians[2]
        assert 600 <= medians[2] <= 1000, medians


def test_lesion_spans_a_few_contiguous_slices() -> None:
    for seed in range(8):
        patient = make_patient(seed, size=96, n_slices=10, lesion=True)
        slices = patient.lesion_slices
        assert 1 <= len(slices) < patient.n_slices - 2
        assert list(slices) == list(range(slices[0], slices[-1] + 1))
        assert patient.pirads in (3, 4, 5) and patient.lesion_zone in ("PZ", "TZ")


# Anatomy


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_gland_grows_from_a_small_apex(seed: int) -> None:
    patient = make_patient(seed, size=128, n_slices=10)
    area = patient.prostate.sum(axis=(1, 2))
    assert area.min() == area[0] > 0
    assert area[0] < 0.6 * area.max()
    assert np.argmax(area) >= patient.n_slices // 2
    assert stats.spearmanr(np.arange(patient.n_slices), area).statistic > 0.5


@pytest.mark.parametrize("seed", [0, 5, 12, 21])
def test_masks_nest_and_zones_partition_the_gland(seed: int) -> None:
    patient = make_patient(seed, size=128, lesion=True)
    assert not (patient.pz & patient.tz).any()
    np.testing.assert_array_equal(patient.pz | patient.tz, patient.prostate)
    assert patient.lesion.any()
    zone = patient.pz if patient.lesion_zone == "PZ" else patient.tz
    assert np.all(zone[patient.lesion])
    assert np.all(patient.tissue[patient.lesion] == Tissue.LESION)
    assert np.all(patient.tissue[patient.prostate & ~patient.lesion] != Tissue.LESION)


def test_adc_lies_in_the_documented_physical_ranges() -> None:
    """Median measured ADC (10^-6 mm^2/s) per tissue, pooled over patients, away from edges
    (which the coarse acquisition blurs) and from the lesion."""
    pooled: dict[str, list[np.ndarray]] = {}
    for seed in range(4):
        patient = make_patient(seed, size=128, lesion=True)
        away = ~grow(patient.lesion, 8)
        regions = {
            "PZ": shrink(patient.pz & away, 1),
            "TZ": shrink(patient.tz & away, 1),
            "urine": shrink(patient.tissue == Tissue.URINE, 2),
            "fat": shrink(patient.tissue == Tissue.FAT, 2),
            "muscle": shrink(patient.tissue == Tissue.MUSCLE, 2),
            "air outside the body": patient.tissue == Tissue.AIR,
        }
        for name, region in regions.items():
            pooled.setdefault(name, []).append(patient.adc[region])
    ranges = {
        "PZ": (1600, 2000),
        "TZ": (1100, 1400),
        "urine": (2800, 3000),
        "fat": (100, 300),
        "muscle": (1400, 1700),
        "air outside the body": (0, 0),
    }
    for name, (low, high) in ranges.items():
        values = np.concatenate(pooled[name])
        assert values.size > 50, name
        assert low <= np.median(values) <= high, (name, np.median(values))


@pytest.mark.parametrize("seed", [0, 2, 4])
def test_bladder_is_bright_on_t2w_and_dark_on_dwi_over_the_base(seed: int) -> None:
    patient = make_patient(seed, size=128, n_slices=10)
    urine = patient.tissue == Tissue.URINE
    slices = np.flatnonzero(urine.any(axis=(1, 2)))
    assert slices.size and slices.min() >= patient.n_slices // 2, "the bladder sits on the base"
    core = shrink(urine, 1)
    median = {
        name: np.median(patient.t2w[mask])
        for name, mask in (
            ("urine", core),
            ("pz", patient.pz),
            ("fat", patient.tissue == Tissue.FAT),
            ("muscle", patient.tissue == Tissue.MUSCLE),
        )
    }
    assert median["urine"] > 1.2 * max(median["pz"], median["fat"], median["muscle"])
    assert np.median(patient.dwi[core]) < np.median(patient.dwi[patient.pz])


def test_rectum_holds_gas_in_some_patients() -> None:
    gas = 0
    for seed in range(6):
        patient = make_patient(seed, size=96)
        inside = ndimage.binary_fill_holes(patient.tissue != Tissue.AIR, IN_PLANE)
        gas += int(((patient.tissue == Tissue.AIR) & inside).any())
    assert 0 < gas < 6


# Cohort: lesions, manifest, files


def test_lesion_fraction_is_met_by_every_prefix_of_the_cohort() -> None:
    for fraction in (0.0, 0.3, 0.5, 1.0):
        for seed in (0, 1, 2):
            flags = [has_lesion(seed, index, fraction) for index in range(40)]
            counts = np.cumsum(flags)
            assert np.all(np.abs(counts - fraction * np.arange(1, 41)) < 1)
    assert patient_seed(3, 0) != patient_seed(3, 1) != patient_seed(4, 1)


def test_manifest_lists_every_slice_with_its_ground_truth(cohort: Path) -> None:
    columns, rows = read_manifest(cohort / "manifest.csv")
    assert columns == [
        "path",
        "origin",
        "sequence",
        "lesion",
        "patient_id",
        "slice_index",
        "pair_key",
        "pirads",
        "intensity",
    ]
    assert len(rows) == 4 * 6 * 3
    assert [r["sequence"] for r in rows[:6]] == ["T2W", "ADC", "DWI"] * 2
    for row in rows:
        k = int(row["slice_index"])
        assert row["path"] == f"slices/{row['patient_id']}_s{k:02d}_{row['sequence']}.png"
        assert (cohort / row["path"]).is_file()
        assert row["origin"] == "real" and row["intensity"] == "raw"
        assert row["patient_id"] in {"PH3-0001", "PH3-0002", "PH3-0003", "PH3-0004"}
        assert row["pair_key"] == f"{row['patient_id']}-s{k:02d}"
        assert row["lesion"] in ("0", "1")
        assert (row["pirads"] in ("3", "4", "5")) == (row["lesion"] == "1")
        assert row["pirads"] == "" or row["lesion"] == "1"

    by_pair: dict[str, set[tuple[str, str]]] = {}
    for row in rows:
        by_pair.setdefault(row["pair_key"], set()).add((row["lesion"], row["pirads"]))
    assert all(len(truth) == 1 for truth in by_pair.values()), "a pair shares its ground truth"

    lesion_patients = {r["patient_id"] for r in rows if r["lesion"] == "1"}
    assert len(lesion_patients) == 2, "half of four patients have a lesion"
    for patient_id in lesion_patients:
        slices = sorted(
            {
                int(r["slice_index"])
                for r in rows
                if r["patient_id"] == patient_id and r["lesion"] == "1"
            }
        )
        assert slices == list(range(slices[0], slices[-1] + 1)) and len(slices) < 6


def test_manifest_of_a_cohort_without_lesions_has_no_pirads_column(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    write_phantom(out, patients=1, seed=3, size=64, slices=3, lesion_fraction=0.0)
    columns, rows = read_manifest(out / "manifest.csv")
    assert "pirads" not in columns and len(rows) == 9
    imported = load_manifest(out / "manifest.csv", allow_absolute=False)
    assert {(s.row.lesion, s.row.pirads) for s in imported} == {(Lesion.NO, None)}


def test_manifest_agrees_with_make_patient(cohort: Path) -> None:
    _, rows = read_manifest(cohort / "manifest.csv")
    for index in range(4):
        patient_id = f"PH3-{index + 1:04d}"
        patient = make_patient(
            patient_seed(3, index), size=64, n_slices=6, lesion=has_lesion(3, index, 0.5)
        )
        listed = {
            int(r["slice_index"])
            for r in rows
            if r["patient_id"] == patient_id and r["lesion"] == "1"
        }
        assert listed == set(patient.lesion_slices)
        t2w = rows[index * 18]
        assert t2w["patient_id"] == patient_id and t2w["sequence"] == "T2W"
        png = np.asarray(Image.open(cohort / t2w["path"]))
        np.testing.assert_array_equal(png, np.rint(patient.t2w[0]).astype(np.uint16))


def test_pngs_are_16_bit_and_nifti_volumes_match_them(cohort: Path) -> None:
    patient = make_patient(patient_seed(3, 0), size=64, n_slices=6, lesion=has_lesion(3, 0, 0.5))
    for sequence in ("T2W", "ADC", "DWI"):
        volume = nib.load(cohort / "volumes" / f"PH3-0001_{sequence}.nii.gz")
        assert volume.shape == (64, 64, 6)
        np.testing.assert_allclose(volume.affine, patient.affine)
        assert volume.header.get_zooms() == pytest.approx(
            (patient.pixel_mm, patient.pixel_mm, patient.slice_mm)
        )
        assert nib.aff2axcodes(volume.affine) == ("L", "P", "S")
        data = np.asarray(volume.dataobj)
        for k in range(6):
            with Image.open(cohort / "slices" / f"PH3-0001_s{k:02d}_{sequence}.png") as image:
                assert image.mode == "I;16" and image.size == (64, 64)
                np.testing.assert_array_equal(np.asarray(image), data[:, :, k].T)
    assert patient.pixel_mm == pytest.approx(220 / 64)


def test_pngs_use_the_16_bit_range_sensibly(cohort: Path) -> None:
    def load(sequence: str) -> np.ndarray:
        paths = sorted((cohort / "slices").glob(f"PH3-0002_s*_{sequence}.png"))
        return np.stack([np.asarray(Image.open(p)) for p in paths]).astype(float)

    t2w, adc, dwi = load("T2W"), load("ADC"), load("DWI")
    for image in (t2w, dwi):
        assert 10_000 < np.percentile(image, 99.5) < 60_000
        assert image.max() < 65_535, "never clipped"
    # ADC is stored in 10^-6 mm^2/s: all but noise in fluid within the importer's 0..3000.
    assert 1500 < np.percentile(adc, 99.5) <= 3100 and adc.max() < 4500


# Arguments and command line


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"size": 32}, "size"),
        ({"n_slices": 2}, "slices"),
        ({"seed": -1}, "seed"),
        ({"lesion": False, "pirads": 4}, "PI-RADS"),
        ({"lesion": True, "pirads": 2}, "PI-RADS"),
    ],
)
def test_make_patient_rejects_bad_arguments(arguments: dict, message: str) -> None:
    with pytest.raises(PhantomError, match=message):
        make_patient(**{"seed": 0, **arguments})


def run_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synth", "phantom", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_writes_a_cohort(tmp_path: Path) -> None:
    out = tmp_path / "tmp"
    result = run_cli("--out", str(out), "--patients", "2", "--seed", "1", "--size", "64")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"wrote 60 slices to {out}"
    assert "phantom" in result.stderr, "progress goes to stderr"
    _, rows = read_manifest(out / "manifest.csv")
    assert len(rows) == 60 and len(list((out / "volumes").iterdir())) == 6


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--size", "16"], "size must be from 64 to 512"),
        (["--patients", "0"], "patients must be from 1"),
        (["--lesion-fraction", "1.5"], "lesion fraction"),
        (["--slices", "100"], "slices"),
        (["--seed", "-3"], "seed"),
    ],
)
def test_cli_rejects_bad_input_with_one_clear_line(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    defaults = {"--patients": "1", "--seed": "1"}
    for flag in arguments[::2]:
        defaults.pop(flag, None)
    flags = [item for pair in defaults.items() for item in pair]
    result = run_cli("--out", str(tmp_path / "out"), *flags, *arguments)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (tmp_path / "out").exists(), "nothing written"


def test_cli_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = run_cli("--out", str(tmp_path), "--patients", "1", "--seed", "1", "--size", "64")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path} is not an empty folder: choose a new one (nothing is overwritten)"
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


# The PI-CAI layout


@pytest.fixture(scope="module")
def picai(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_picai(tmp_path_factory.mktemp("picai") / "cohort", patients=6, seed=3, size=64)


def picai_patient(index: int) -> PhantomPatient:
    return make_patient(patient_seed(3, index), size=64, lesion=has_lesion(3, index, 0.5))


def read_image(path: Path) -> tuple[sitk.Image, np.ndarray]:
    image = sitk.ReadImage(str(path))
    return image, sitk.GetArrayFromImage(image)


def test_picai_layout_holds_images_labels_and_marksheet(picai: Path) -> None:
    names = {f"PH3-{i:04d}_{1_000_000 + i}" for i in range(1, 7)}
    expected = {
        f"images/{name.split('_')[0]}/{name}_{kind}.mha"
        for name in names
        for kind in ("t2w", "adc", "hbv", "sag", "cor")
    }
    for labels in ("human_expert/resampled", "AI/Bosma22a"):
        expected |= {f"labels/csPCa_lesion_delineations/{labels}/{name}.nii.gz" for name in names}
    expected.add("labels/clinical_information/marksheet.csv")
    assert {p.relative_to(picai).as_posix() for p in picai.rglob("*") if p.is_file()} == expected


def test_picai_t2w_is_the_patient_on_its_grid_in_lps(picai: Path) -> None:
    patient = picai_patient(0)
    image, array = read_image(picai / "images/PH3-0001/PH3-0001_1000001_t2w.mha")
    np.testing.assert_array_equal(array, np.rint(patient.t2w).astype(np.uint16))
    assert image.GetSpacing() == pytest.approx(
        (patient.pixel_mm, patient.pixel_mm, patient.slice_mm)
    )
    # The NIfTI affine is RAS; LPS negates its first two coordinates.
    ras = patient.affine[:3, 3]
    assert image.GetOrigin() == pytest.approx((-ras[0], -ras[1], ras[2]))
    assert image.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize(("kind", "name"), [("adc", "adc"), ("hbv", "dwi")])
def test_picai_diffusion_is_coarser_and_lies_where_the_t2w_does(picai: Path, kind, name) -> None:
    """ADC and high-b DWI come on the acquisition's coarse grid, cut front to back (26 x 18
    pixels of 8.5 mm at 64 px); resampled onto the T2W they give the phantom's own
    interpolated volume, so their geometry is right."""
    patient = picai_patient(0)
    t2w, _ = read_image(picai / "images/PH3-0001/PH3-0001_1000001_t2w.mha")
    image, array = read_image(picai / f"images/PH3-0001/PH3-0001_1000001_{kind}.mha")
    assert image.GetSize() == (26, 18, 10)
    assert image.GetSpacing() == pytest.approx((220 / 26, 220 / 26, patient.slice_mm))
    np.testing.assert_array_equal(
        array, np.rint(getattr(patient, f"{name}_acquired")[:, 4:22, :]).astype(np.uint16)
    )
    resampled = sitk.GetArrayFromImage(
        sitk.Resample(sitk.Cast(image, sitk.sitkFloat32), t2w, sitk.Transform(), sitk.sitkLinear)
    )
    inside = shrink(patient.prostate, 2)
    assert stats.pearsonr(resampled[inside], getattr(patient, name)[inside]).statistic > 0.95


def test_picai_sagittal_and_coronal_restack_the_t2w(picai: Path) -> None:
    t2w, array = read_image(picai / "images/PH3-0002/PH3-0002_1000002_t2w.mha")
    for kind in ("sag", "cor"):
        image, _ = read_image(picai / f"images/PH3-0002/PH3-0002_1000002_{kind}.mha")
        assert image.GetSize() != t2w.GetSize()
        back = sitk.Resample(image, t2w, sitk.Transform(), sitk.sitkNearestNeighbor)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(back), array)


def test_picai_labels_grade_significant_lesions_only(picai: Path) -> None:
    """Expert labels hold the ISUP grade (2-5) of a clinically significant lesion, the AI's 1;
    an ISUP 1 lesion (PH3-0005) and patients without a lesion have all-zero labels."""
    labels = picai / "labels" / "csPCa_lesion_delineations"
    grades = []
    for index in range(6):
        patient = picai_patient(index)
        case = picai_case(3, index, patient)
        grades.append(case.isup)
        t2w, _ = read_image(picai / f"images/{case.patient_id}/{case.name}_t2w.mha")
        significant = patient.lesion if case.significant else np.zeros_like(patient.lesion)
        for folder, value in (("human_expert/resampled", case.isup), ("AI/Bosma22a", 1)):
            label, array = read_image(labels / folder / f"{case.name}.nii.gz")
            np.testing.assert_array_equal(array, significant * (value or 0))
            assert label.GetOrigin() == pytest.approx(t2w.GetOrigin(), abs=1e-4)
            assert label.GetSpacing() == pytest.approx(t2w.GetSpacing(), abs=1e-4)
    assert grades == [2, None, 3, None, 1, None]


def test_picai_marksheet_has_pi_cai_columns_and_agrees_with_the_labels(picai: Path) -> None:
    columns, rows = read_manifest(picai / "labels/clinical_information/marksheet.csv")
    assert columns == [
        "patient_id",
        "study_id",
        "mri_date",
        "patient_age",
        "psa",
        "psad",
        "prostate_volume",
        "histopath_type",
        "lesion_GS",
        "lesion_ISUP",
        "case_ISUP",
        "case_csPCa",
        "center",
    ]
    assert [(r["lesion_GS"], r["lesion_ISUP"], r["case_ISUP"], r["case_csPCa"]) for r in rows] == [
        ("3+4", "2", "2", "YES"),
        ("", "", "0", "NO"),
        ("4+3", "3", "3", "YES"),
        ("", "", "0", "NO"),
        ("3+3", "1", "1", "NO"),
        ("", "", "0", "NO"),
    ]
    patient = picai_patient(0)
    volume_ml = patient.prostate.sum() * patient.pixel_mm**2 * patient.slice_mm / 1000
    assert float(rows[0]["prostate_volume"]) == pytest.approx(volume_ml, abs=0.05)
    assert all(50 <= int(r["patient_age"]) < 80 for r in rows)


def test_picai_cases_change_only_their_grade_with_the_lesion() -> None:
    """Clinical values have a stream of their own, drawn whatever the lesion; the grade follows
    the PI-RADS category's table."""
    seen: dict[int, set[int]] = {3: set(), 4: set(), 5: set()}
    for index in range(300):
        without = picai_case(1, index, SimpleNamespace(pirads=None))
        for pirads in (3, 4, 5):
            case = picai_case(1, index, SimpleNamespace(pirads=pirads))
            assert (case.mri_date, case.age, case.psa) == (
                without.mri_date,
                without.age,
                without.psa,
            )
            seen[pirads].add(case.isup)
    assert seen == {3: {1, 2}, 4: {1, 2, 3}, 5: {2, 3, 4, 5}}


def test_picai_layout_is_reproducible(picai: Path, tmp_path: Path) -> None:
    again = write_picai(tmp_path / "again", patients=6, seed=3, size=64)
    assert files(again) == files(picai)


def test_cli_writes_the_picai_layout(tmp_path: Path) -> None:
    out = tmp_path / "picai"
    result = run_cli(
        "--out", str(out), "--patients", "2", "--seed", "1", "--size", "64", "--layout", "picai"
    )
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip().splitlines()[-1] == f"wrote 2 patients in the PI-CAI layout to {out}"
    )
    assert len(list((out / "images").rglob("*.mha"))) == 10
    refused = run_cli(
        "--out", str(tmp_path / "x"), "--patients", "1", "--seed", "1", "--layout", "dicom"
    )
    assert refused.returncode == 2 and "invalid choice: 'dicom'" in refused.stderr
    assert not (tmp_path / "x").exists()
