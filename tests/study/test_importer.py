"""Importing manifests into the asset library: all or nothing, idempotent, conflicts named."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from study.db import transaction
from study.design import PairedBlock, StudyPlan, create_study, open_study
from study.imaging.canonical import canonical_from_bytes
from study.imaging.commandline import MIN_LESION_VOXELS
from study.imaging.errors import ShownPaths, VTTError
from study.imaging.lesions import DEFAULT_MIN_LESION_VOXELS
from study.imaging.manifest import write_manifest
from study.imaging.mask import mask_from_bytes
from study.imaging.normalise import normalise
from study.imaging.types import Sequence
from study.importer import ImportConflictError, import_manifest
from study.models import Asset, Case
from study.questions import TEMPLATES
from study.readers import add_reader
from study.reading import Viewport, next_case
from study.storage import AssetStore

ROOT = Path(__file__).resolve().parents[2]


def manifest_in(folder: Path, rows: list[dict[str, str]], name: str = "manifest.csv") -> Path:
    return write_manifest(folder / name, rows)


def gradient_png(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    array = (rng.random((48, 40)) * 60000).astype(np.uint16)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def generated(tmp_path: Path) -> list[dict[str, str]]:
    images = tmp_path / "images"
    images.mkdir()
    return [
        {
            "path": f"images/{gradient_png(images / f'g{i}.png', i).name}",
            "origin": origin,
            "sequence": "t2w",
            "lesion": lesion,
            "patient_id": f"G{i}" if origin == "real" else "",
        }
        for i, (origin, lesion) in enumerate([("real", "1"), ("synthetic", "0"), ("real", "no")])
    ]


def asset_count(engine) -> int:
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(Asset))


def stored_files(store: AssetStore) -> set[Path]:
    return set(store.root.rglob("*.*")) if store.root.exists() else set()


def test_real_prostatex_and_generated_images_import_and_read_back(
    engine, shared_data, tmp_path, generated
):
    rows = list(generated)
    for sequence, folder in [("T2W", "t2w"), ("ADC", "adc"), ("DWI", "hbv")]:
        rows.append(
            {
                "path": str(shared_data / "prostatex" / "ProstateX-0000" / folder),
                "origin": "real",
                "sequence": sequence,
                "lesion": "0",
                "patient_id": "ProstateX-0000",
                "slices": "central:4",
            }
        )
    store = AssetStore(tmp_path / "assets")
    result = import_manifest(engine, manifest_in(tmp_path, rows), store=store)
    assert (result.added, result.unchanged) == (3 + 3 * 4, 0)

    with transaction(engine) as session:
        assets = session.scalars(select(Asset).order_by(Asset.id)).all()
        by_sequence = {s: [a for a in assets if a.sequence == s] for s in ("T2W", "ADC", "DWI")}
        # ADC and DWI (128 x 84 at 2 mm) are shown on the T2W's slices (384 x 384 at 0.5 mm).
        assert [a.slice_index for a in by_sequence["ADC"]] == [7, 8, 9, 10]
        assert {(a.rows, a.cols) for a in by_sequence["ADC"]} == {(384, 384)}
        assert {(a.spacing_row_mm, a.spacing_col_mm) for a in by_sequence["ADC"]} == {(0.5, 0.5)}
        t2w_prostatex = [a for a in by_sequence["T2W"] if a.patient_id == "ProstateX-0000"]
        assert {(a.rows, a.cols) for a in t2w_prostatex} == {(384, 384)}
        keys = {s: [a.pair_key for a in by_sequence[s] if a.patient_id] for s in by_sequence}
        assert keys["ADC"] == keys["DWI"] == keys["T2W"][-4:] and len(set(keys["ADC"])) == 4
        synthetic = [a for a in assets if a.origin == "synthetic"]
        assert [(a.lesion, a.patient_id) for a in synthetic] == [(0, "")]
        assert sorted(a.lesion for a in assets if a.patient_id.startswith("G")) == [0, 1]
        canonical = canonical_from_bytes(store.read(assets[-1].canonical_sha256, ".npy"))
        assert canonical.shape == (384, 384) and canonical.dtype == np.float32
        assert 0.0 <= canonical.min() < canonical.max() <= 1.0
        display = Image.open(store.path(assets[-1].display_sha256, ".png"))
        assert (display.size, display.mode) == ((256, 256), "L")


def test_reimport_is_a_no_op_when_metadata_agree(engine, tmp_path, generated):
    manifest = manifest_in(tmp_path, generated)
    store = AssetStore(tmp_path / "assets")
    assert import_manifest(engine, manifest, store=store).added == 3
    files = stored_files(store)
    again = import_manifest(engine, manifest, store=store)
    assert (again.added, again.unchanged) == (0, 3)
    assert asset_count(engine) == 3 and stored_files(store) == files


def test_reimport_with_other_metadata_names_the_conflicting_fields(engine, tmp_path, generated):
    store = AssetStore(tmp_path / "assets")
    import_manifest(engine, manifest_in(tmp_path, generated), store=store)
    changed = [dict(generated[0], lesion="0", patient_id="OTHER")]
    with pytest.raises(ImportConflictError) as error:
        import_manifest(engine, manifest_in(tmp_path, changed, "changed.csv"), store=store)
    message = str(error.value)
    assert "g0.png" in message and "lesion: stored 1, manifest 0" in message
    assert "patient_id: stored 'G0', manifest 'OTHER'" in message
    assert asset_count(engine) == 3


def test_the_same_source_twice_in_one_manifest_with_other_labels_is_refused(
    engine, tmp_path, generated
):
    rows = [*generated, dict(generated[0], lesion="0")]
    with pytest.raises(ImportConflictError, match=r"g0\.png.*repeats"):
        import_manifest(engine, manifest_in(tmp_path, rows), store=AssetStore(tmp_path / "a"))
    assert asset_count(engine) == 0


BAD_ROWS = {
    "zero-byte file": ("empty.png", lambda p: p.write_bytes(b""), "empty"),
    "text named .dcm": ("notes.dcm", lambda p: p.write_text("not an image"), "notes.dcm"),
    "escaping path": ("../../etc/passwd", None, "passwd"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_a_bad_row_among_good_ones_leaves_database_and_files_unchanged(
    engine, tmp_path, generated, case
):
    name, make, expected = BAD_ROWS[case]
    if make:
        make(tmp_path / name)
    store = AssetStore(tmp_path / "assets")
    import_manifest(engine, manifest_in(tmp_path, generated[:1], "first.csv"), store=store)
    before = stored_files(store)
    bad = {"path": name, "origin": "real", "sequence": "T2W", "lesion": "0", "patient_id": "X"}
    manifest = manifest_in(tmp_path, [*generated[1:], bad])
    with pytest.raises(VTTError) as error:
        import_manifest(engine, manifest, store=store)
    assert "manifest.csv" in str(error.value) and expected in str(error.value)
    assert asset_count(engine) == 1
    assert stored_files(store) == before


def test_missing_slice_series_is_refused_and_nothing_imported(engine, shared_data, tmp_path):
    bad_series = shared_data / "prostatex-bad" / "ProstateX-0000-missing-slice" / "hbv"
    rows = [
        {"path": str(bad_series), "origin": "real", "sequence": "DWI", "lesion": "0"},
    ]
    rows[0]["patient_id"] = "ProstateX-0000"
    with pytest.raises(VTTError, match="missing"):
        import_manifest(engine, manifest_in(tmp_path, rows), store=AssetStore(tmp_path / "a"))
    assert asset_count(engine) == 0


def run_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "VTT_DATA_DIR": str(data_dir)}
    env.pop("VTT_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "study", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_cli_prints_added_n_assets_last_and_refuses_bad_input(tmp_path, generated):
    data_dir = tmp_path / "instance"
    done = run_cli("import", str(manifest_in(tmp_path, generated)), data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "added 3 assets"
    assert (data_dir / "vtt.sqlite3").exists()

    bad = manifest_in(tmp_path, [dict(generated[0], sequence="CT")], "bad.csv")
    failed = run_cli("import", str(bad), data_dir=data_dir)
    assert failed.returncode == 1
    assert "bad.csv" in failed.stderr and "CT" in failed.stderr
    assert failed.stderr.count("\n") >= 1 and "Traceback" not in failed.stderr


def test_every_conflict_is_on_its_own_line_naming_the_manifest(engine, tmp_path, generated):
    store = AssetStore(tmp_path / "assets")
    import_manifest(engine, manifest_in(tmp_path, generated), store=store)
    changed = [dict(generated[0], lesion="0"), dict(generated[2], patient_id="OTHER")]
    manifest = manifest_in(tmp_path, changed, "changed.csv")
    with pytest.raises(ImportConflictError) as error:
        import_manifest(engine, manifest, store=store)
    images = tmp_path / "images"
    assert error.value.problems == [
        f"{manifest}: {images / 'g0.png'} (line 2, slice 0) was imported before with other "
        "metadata (lesion: stored 1, manifest 0)",
        f"{manifest}: {images / 'g2.png'} (line 3, slice 0) was imported before with other "
        "metadata (patient_id: stored 'G2', manifest 'OTHER')",
    ]


def test_conflicts_in_an_upload_name_the_upload(engine, tmp_path, generated):
    rows = [*generated, dict(generated[0], lesion="0"), dict(generated[1], lesion="1")]
    with pytest.raises(ImportConflictError) as error:
        import_manifest(
            engine,
            manifest_in(tmp_path, rows),
            store=AssetStore(tmp_path / "assets"),
            shown=ShownPaths(tmp_path, "batch.zip"),
        )
    assert error.value.problems == [
        "batch.zip: manifest.csv: images/g0.png (line 5, slice 0) repeats images/g0.png "
        "(line 2, slice 0) with other metadata",
        "batch.zip: manifest.csv: images/g1.png (line 6, slice 0) repeats images/g1.png "
        "(line 3, slice 0) with other metadata",
    ]
    assert asset_count(engine) == 0


def test_cli_prints_each_problem_on_its_own_line_naming_the_real_path(tmp_path, generated):
    rows = [dict(generated[0], sequence="CT"), dict(generated[1], origin="fake")]
    bad = manifest_in(tmp_path, rows, "bad.csv")
    failed = run_cli("import", str(bad), data_dir=tmp_path / "instance")
    assert failed.returncode == 1
    assert failed.stderr.splitlines()[-2:] == [
        f"error: {bad}: line 2: images/g0.png: unknown sequence 'CT'; use one of 't2w', 't2', "
        "'t2-w', 't2-weighted', 'adc', 'dwi', 'dw', 'hbv', 'high-b', 'highb', 'other'",
        f"{bad}: line 3: images/g1.png: unknown origin 'fake'; use one of 'real', 'synthetic'",
    ]


def test_import_renders_at_the_render_size_setting(engine, tmp_path, generated, monkeypatch):
    monkeypatch.setenv("VTT_RENDER_SIZE", "64")
    store = AssetStore(tmp_path / "assets")
    import_manifest(engine, manifest_in(tmp_path, generated), store=store)
    with transaction(engine) as session:
        displays = [
            store.path(sha, ".png") for sha in session.scalars(select(Asset.display_sha256))
        ]
    assert {Image.open(path).size for path in displays} == {(64, 64)}


@pytest.mark.parametrize("value", ["2048", "8", "big", "256.5"])
def test_a_render_size_streamlit_would_re_encode_is_refused(
    engine, tmp_path, generated, monkeypatch, value: str
) -> None:
    monkeypatch.setenv("VTT_RENDER_SIZE", value)
    store = AssetStore(tmp_path / "assets")
    with pytest.raises(ValueError, match="16 to 1024"):
        import_manifest(engine, manifest_in(tmp_path, generated), store=store)
    assert asset_count(engine) == 0 and stored_files(store) == set()


def test_import_refuses_images_over_the_max_image_pixels_setting(
    engine, tmp_path, generated, monkeypatch
):
    # The generated pictures have 48 x 40 = 1,920 pixels, shown on a 48 x 48 square.
    manifest = manifest_in(tmp_path, generated)
    monkeypatch.setenv("VTT_MAX_IMAGE_PIXELS", "2303")
    with pytest.raises(VTTError, match=r"padded to a 48 x 48 square .* over the limit of 2,303"):
        import_manifest(engine, manifest, store=AssetStore(tmp_path / "a"))
    monkeypatch.setenv("VTT_MAX_IMAGE_PIXELS", "2304")
    assert import_manifest(engine, manifest, store=AssetStore(tmp_path / "b")).added == 3


# --- lesion masks -------------------------------------------------------------------------------

MASK_AFFINE = np.diag([0.5, 0.5, 3.0, 1.0])
SHIFT_500_MM = np.pad([[500.0]], ((0, 3), (3, 0)))


def masked_volume(folder: Path, lesion_slices: dict[int, int]) -> tuple[Path, Path]:
    """A 16 x 16 x 4 NIfTI image and its mask: a side x side square of label 2 per slice."""
    values = np.random.default_rng(4).random((16, 16, 4)).astype(np.float32) * 300
    labels = np.zeros((16, 16, 4), np.uint8)
    for k, side in lesion_slices.items():
        labels[4 : 4 + side, 5 : 5 + side, k] = 2
    image, mask = folder / "t2w.nii.gz", folder / "t2w_mask.nii.gz"
    nib.save(nib.Nifti1Image(values, MASK_AFFINE), image)
    nib.save(nib.Nifti1Image(labels, MASK_AFFINE), mask)
    return image, mask


def mask_row(image: Path, mask: Path, **more: str) -> dict[str, str]:
    return {
        "path": image.name,
        "origin": "real",
        "sequence": "T2W",
        "lesion": "",
        "patient_id": "M1",
        "slices": "all",
        "mask": mask.name,
        **more,
    }


def test_a_mask_gives_each_asset_its_truth_mask_file_and_lesion_outlines(engine, tmp_path):
    image, mask = masked_volume(tmp_path, {1: 4, 2: 3})
    manifest = manifest_in(tmp_path, [mask_row(image, mask)])
    store = AssetStore(tmp_path / "assets")
    assert import_manifest(engine, manifest, store=store).added == 4
    with transaction(engine) as session:
        assets = session.scalars(select(Asset).order_by(Asset.slice_index)).all()
        assert [a.lesion for a in assets] == [0, 1, 0, 0]  # 9 voxels on slice 2: below 10
        assert all(a.mask_sha256 for a in assets)
        labels = mask_from_bytes(store.read(assets[1].mask_sha256, ".npy"))
        canonical = canonical_from_bytes(store.read(assets[1].canonical_sha256, ".npy"))
        assert labels.shape == canonical.shape == (assets[1].rows, assets[1].cols)
        assert np.count_nonzero(labels == 2) == 16
        (lesion,) = assets[1].lesions
        assert (lesion["label"], lesion["voxels"], lesion["area_mm2"]) == (2, 16, 4.0)
        assert lesion["outline"][0] == lesion["outline"][-1]
        assert [a.lesions for a in assets if a.slice_index != 1] == [[], [], []]
        assert assets[0].plane["origin_mm"] is not None
    files = stored_files(store)
    assert import_manifest(engine, manifest, store=store).unchanged == 4
    assert stored_files(store) == files
    # Counting 9 voxels as enough changes slice 2's truth: a conflict, not a silent change.
    with pytest.raises(ImportConflictError, match=r"slice 2\) was imported before .*lesion"):
        import_manifest(engine, manifest, store=store, min_lesion_voxels=9)


def test_a_picture_row_imports_with_its_2d_mask_as_truth(engine, tmp_path):
    """As `synth sample --lesion-mask` writes them: a 2D PNG and its 2D PNG mask."""
    gradient_png(tmp_path / "t2w-0.png", 0)
    labels = np.zeros((48, 40), np.uint8)
    labels[10:15, 20:24] = 1
    Image.fromarray(labels).save(tmp_path / "t2w-0-mask.png")
    row = {"path": "t2w-0.png", "origin": "synthetic", "sequence": "T2W", "lesion": "1"}
    manifest = manifest_in(tmp_path, [{**row, "patient_id": "", "mask": "t2w-0-mask.png"}])
    store = AssetStore(tmp_path / "assets")
    assert import_manifest(engine, manifest, store=store).added == 1
    with transaction(engine) as session:
        (asset,) = session.scalars(select(Asset)).all()
        assert asset.lesion == 1
        assert np.array_equal(mask_from_bytes(store.read(asset.mask_sha256, ".npy")), labels)
        (lesion,) = asset.lesions
        assert (lesion["label"], lesion["voxels"]) == (1, 20)
        assert asset.plane is None


def test_assets_without_a_mask_have_none(engine, tmp_path, generated):
    import_manifest(engine, manifest_in(tmp_path, generated), store=AssetStore(tmp_path / "a"))
    with transaction(engine) as session:
        stored = session.execute(select(Asset.mask_sha256, Asset.lesions, Asset.plane)).all()
    assert stored == [(None, None, None)] * 3


BAD_MASK_ROWS = {
    "unreadable": (lambda m: m.write_bytes(b"junk"), {}, "cannot be read as NIfTI"),
    "empty, lesion 1": (
        lambda m: nib.save(nib.Nifti1Image(np.zeros((16, 16, 4), np.uint8), MASK_AFFINE), m),
        {"lesion": "1"},
        "the mask is empty (no voxel of any label > 0), but lesion is 1",
    ),
    "every voxel labelled": (
        lambda m: nib.save(nib.Nifti1Image(np.ones((16, 16, 4), np.uint8), MASK_AFFINE), m),
        {},
        "the mask labels every voxel",
    ),
    "no overlap": (
        lambda m: nib.save(
            nib.Nifti1Image(np.asanyarray(nib.load(m).dataobj), MASK_AFFINE + SHIFT_500_MM), m
        ),
        {},
        "the mask lies elsewhere in the patient",
    ),
    "disagrees with lesion": (lambda m: None, {"lesion": "0"}, "slice 1; leave lesion empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_MASK_ROWS))
def test_a_bad_mask_imports_nothing_and_names_the_file(engine, tmp_path, generated, case):
    damage, options, expected = BAD_MASK_ROWS[case]
    image, mask = masked_volume(tmp_path, {1: 4})
    damage(mask)
    store = AssetStore(tmp_path / "assets")
    import_manifest(engine, manifest_in(tmp_path, generated[:1], "first.csv"), store=store)
    before = stored_files(store)
    manifest = manifest_in(tmp_path, [*generated[1:], mask_row(image, mask, **options)])
    with pytest.raises(VTTError) as error:
        import_manifest(engine, manifest, store=store)
    (problem,) = error.value.problems
    named = image if case == "disagrees with lesion" else mask
    assert problem.startswith(f"{manifest}: line 4: {named}: ") and expected in problem, problem
    assert asset_count(engine) == 1 and stored_files(store) == before


def test_cli_takes_the_lesion_options_and_refuses_a_bad_mask(tmp_path):
    image, mask = masked_volume(tmp_path, {1: 4, 2: 3})
    data_dir = tmp_path / "instance"
    manifest = manifest_in(tmp_path, [mask_row(image, mask)])
    done = run_cli(
        "import", str(manifest), "--min-lesion-voxels", "9", "--lesion-labels", "2,3",
        data_dir=data_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "added 4 assets"
    mask.write_bytes(b"junk")
    other = manifest_in(tmp_path, [mask_row(image, mask, patient_id="M2")], "other.csv")
    failed = run_cli("import", str(other), data_dir=data_dir)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert f"error: {other}: line 2: {mask}: cannot be read as NIfTI" in failed.stderr
    refused = run_cli("import", str(manifest), "--lesion-labels", "0,x", data_dir=data_dir)
    assert refused.returncode == 2 and "--lesion-labels" in refused.stderr


def test_the_command_line_default_is_the_library_default():
    assert MIN_LESION_VOXELS == DEFAULT_MIN_LESION_VOXELS


# --- paired sequences of real data --------------------------------------------------------------


def sitk_series(folder: Path):
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


@pytest.fixture
def prostatex_with_masks(shared_data, tmp_path) -> Path:
    """A manifest of both ProstateX patients (T2W, ADC, DWI; central 10 slices), each with a
    mask on its T2W grid: a disc of label 2 on T2W slices 8 to 10."""
    import SimpleITK as sitk

    rows = []
    for patient in ("ProstateX-0000", "ProstateX-0001"):
        t2w = sitk_series(shared_data / "prostatex" / patient / "t2w")
        labels = np.zeros(sitk.GetArrayFromImage(t2w).shape, np.uint8)
        rows_, cols_ = np.indices(labels.shape[1:])
        labels[8:11][:, (rows_ - 200) ** 2 + (cols_ - 190) ** 2 <= 30**2] = 2
        mask = sitk.GetImageFromArray(labels)
        mask.CopyInformation(t2w)
        sitk.WriteImage(mask, str(tmp_path / f"{patient}_mask.mha"))
        for sequence, folder in [("T2W", "t2w"), ("ADC", "adc"), ("DWI", "hbv")]:
            rows.append(
                {
                    "path": str(shared_data / "prostatex" / patient / folder),
                    "origin": "real",
                    "sequence": sequence,
                    "lesion": "",
                    "patient_id": patient,
                    "mask": f"{patient}_mask.mha",
                }
            )
    return manifest_in(tmp_path, rows)


@pytest.mark.slow
def test_real_prostatex_adc_and_dwi_show_the_t2w_slice_they_are_paired_with(
    engine, shared_data, tmp_path, prostatex_with_masks
):
    import SimpleITK as sitk

    store = AssetStore(tmp_path / "assets")
    assert import_manifest(engine, prostatex_with_masks, store=store).added == 2 * 3 * 10
    with transaction(engine) as session:
        assets = session.scalars(select(Asset).order_by(Asset.id)).all()
        by_key = {(a.pair_key, a.sequence): a for a in assets}
        assert len(by_key) == len(assets)
        for patient in ("ProstateX-0000", "ProstateX-0001"):
            series = shared_data / "prostatex" / patient
            t2w_image = sitk_series(series / "t2w")
            for sequence, folder in [("ADC", "adc"), ("DWI", "hbv")]:
                # An independent resampling of the series, read by SimpleITK (GDCM).
                expected = sitk.GetArrayFromImage(
                    sitk.Resample(
                        sitk_series(series / folder), t2w_image, sitk.Transform(),
                        sitk.sitkLinear, 0.0, sitk.sitkFloat32,
                    )
                )  # fmt: skip
                paired = [a for a in assets if a.patient_id == patient and a.sequence == sequence]
                assert [a.slice_index for a in paired] == list(range(4, 14))
                for asset in paired:
                    t2w = by_key[(asset.pair_key, "T2W")]
                    k = t2w.slice_index
                    assert asset.slice_index == k and asset.lesion == t2w.lesion
                    assert (asset.rows, asset.cols) == (t2w.rows, t2w.cols) == (384, 384)
                    assert (asset.spacing_row_mm, asset.spacing_col_mm) == (0.5, 0.5)
                    for plane in (asset.plane, t2w.plane):
                        corner = (
                            np.array(plane["origin_mm"])
                            + 383 * np.array(plane["row_step_mm"])
                            + 383 * np.array(plane["col_step_mm"])
                        )
                        first = t2w_image.TransformIndexToPhysicalPoint((0, 0, k))
                        last = t2w_image.TransformIndexToPhysicalPoint((383, 383, k))
                        assert np.allclose(plane["origin_mm"], first, atol=0.01)
                        assert np.allclose(corner, last, atol=0.01)
                    canonical = canonical_from_bytes(store.read(asset.canonical_sha256, ".npy"))
                    np.testing.assert_allclose(
                        canonical, normalise(expected[k], sequence), atol=1e-4
                    )
        assert sorted({a.slice_index for a in assets if a.lesion == 1}) == [8, 9, 10]

    plan = StudyPlan(
        "paired",
        TEMPLATES["Seed protocol"],
        (PairedBlock((Sequence.T2W, Sequence.ADC), cases=6, synthetic_share=0.0),),
    )
    study_id = create_study(engine, plan)
    with transaction(engine) as session:
        cases = session.scalars(select(Case).where(Case.study_id == study_id)).all()
        assert len(cases) == 6
        for case in cases:
            t2w, adc = (view.asset for view in case.views)
            assert t2w.pair_key == adc.pair_key and t2w.plane == adc.plane

    # Nothing a reader receives names or carries the mask or its lesions.
    open_study(engine, study_id)
    reader = add_reader(engine, study_id, "r").reader_id
    view = next_case(engine, reader)
    # The image's size places lesion marks on the server; the browser never gets it.
    assert [f.name for f in fields(Viewport)] == [
        "name",
        "label",
        "canonical_sha256",
        "slice_sha256s",
        "rows",
        "cols",
    ]
    with transaction(engine) as session:
        masks = {sha for (sha,) in session.execute(select(Asset.mask_sha256)) if sha}
    shown = repr(view) + repr([vars(v) for v in view.viewports])
    assert masks and not any(sha in shown for sha in masks)
    assert "outline" not in shown and "lesions" not in shown
