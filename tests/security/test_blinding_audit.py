"""Blinding beyond the DOM: display renders of real and synthetic images are alike in size, mode,
metadata and byte length, and the blinding audit flags trivial cues (brightness), pooled and
within each sequence, but not chance."""

from __future__ import annotations

import csv
import io
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from study.blinding import (
    FEATURE_NAMES,
    BlindingAuditError,
    Verdict,
    audit_assets,
    audit_figure,
    display_features,
)
from study.db import transaction
from study.design import SingleBlock, StudyPlan, create_study
from study.imaging.render import render_png
from study.imaging.types import Sequence
from study.importer import import_manifest
from study.models import Asset
from study.questions import TEMPLATES
from study.storage import AssetStore

ROOT = Path(__file__).resolve().parents[2]
RENDER_SIZE = 64
COLUMNS = ["path", "origin", "sequence", "lesion", "patient_id", "slices", "intensity"]


@pytest.fixture
def store(data_dir: Path) -> AssetStore:
    return AssetStore(data_dir / "assets")


def write_manifest(folder: Path, rows: list[dict[str, str]]) -> Path:
    path = folder / "manifest.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row.get(column, "") for column in COLUMNS})
    return path


def write_dicom_slice(path: Path, array: np.ndarray, z: float, series: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = series
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "SECRET-PATIENT"
    ds.Modality = "MR"
    ds.ImagePositionPatient = [0.0, 0.0, z]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [0.5, 0.7]
    ds.Rows, ds.Columns = array.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = array.astype("<u2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def ihdr(png: bytes) -> bytes:
    assert png[12:16] == b"IHDR"
    return png[16:29]


def chunk_types(png: bytes) -> list[bytes]:
    types, offset = [], 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        types.append(png[offset + 4 : offset + 8])
        offset += 12 + length
    return types


def display_pngs(engine, store: AssetStore) -> dict[str, list[bytes]]:
    with transaction(engine) as session:
        assets = session.scalars(select(Asset)).all()
        pairs = [(str(a.origin), a.display_sha256) for a in assets]
    out: dict[str, list[bytes]] = {}
    for origin, sha in pairs:
        out.setdefault(origin, []).append(store.read(sha, ".png"))
    return out


def assert_alike(pngs: dict[str, list[bytes]], size: int) -> None:
    assert set(pngs) == {"real", "synthetic"}
    every = [png for group in pngs.values() for png in group]
    assert len({ihdr(png) for png in every}) == 1
    # A browser's developer tools show each image's length: it must not follow the content.
    assert len({len(png) for png in every}) == 1
    for png in every:
        assert chunk_types(png) == [b"IHDR", b"IDAT", b"IEND"]
        with Image.open(io.BytesIO(png)) as image:
            assert (image.mode, image.size, image.format) == ("L", (size, size), "PNG")
            assert image.info == {}
        assert b"SECRET" not in png and b"Doe" not in png


def test_renders_of_imported_real_and_synthetic_images_share_size_mode_and_metadata(
    engine, store, tmp_path, monkeypatch
):
    monkeypatch.setenv("VTT_RENDER_SIZE", str(RENDER_SIZE))
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    for k in range(3):
        write_dicom_slice(
            folder / "series" / f"IM{k}.dcm", rng.integers(0, 4000, (40, 30)), 2.0 * k, "1.2.3.4"
        )
    nib.save(
        nib.Nifti1Image(
            rng.random((20, 24, 3)).astype(np.float32) * 900, np.diag([0.8, 0.8, 3, 1])
        ),
        folder / "volume.nii.gz",
    )
    Image.fromarray(rng.integers(0, 255, (50, 70), dtype=np.uint8)).save(folder / "photo.png")
    Image.fromarray(rng.integers(0, 65535, (64, 64), dtype=np.uint16)).save(folder / "gen16.png")
    Image.fromarray(rng.integers(0, 255, (128, 96), dtype=np.uint8)).save(folder / "gen8.png")
    one_slice = rng.random((32, 32, 1)).astype(np.float32)
    nib.save(nib.Nifti1Image(one_slice, np.eye(4)), folder / "gen.nii")
    manifest = write_manifest(
        tmp_path,
        [
            {"path": "images/series", "origin": "real", "sequence": "T2W", "lesion": "0",
             "patient_id": "P1", "slices": "all"},
            {"path": "images/volume.nii.gz", "origin": "real", "sequence": "ADC", "lesion": "1",
             "patient_id": "P2", "slices": "all"},
            {"path": "images/photo.png", "origin": "real", "sequence": "other", "lesion": "",
             "patient_id": "P3"},
            {"path": "images/gen16.png", "origin": "synthetic", "sequence": "T2W", "lesion": "0",
             "intensity": "canonical"},
            {"path": "images/gen8.png", "origin": "synthetic", "sequence": "ADC", "lesion": "1",
             "intensity": "canonical"},
            {"path": "images/gen.nii", "origin": "synthetic", "sequence": "DWI", "lesion": "1",
             "intensity": "canonical"},
        ],
    )  # fmt: skip
    assert import_manifest(engine, manifest, store=store).added == 10
    assert_alike(display_pngs(engine, store), RENDER_SIZE)


@pytest.mark.slow
def test_renders_of_real_prostatex_and_synthetic_images_share_size_mode_and_metadata(
    engine, store, tmp_path, shared_data
):
    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(rng.integers(0, 65535, (128, 128), dtype=np.uint16)).save(
            tmp_path / f"gen{i}.png"
        )
    series = shared_data / "prostatex" / "ProstateX-0001"
    manifest = write_manifest(
        tmp_path,
        [
            {"path": str(series / "t2w"), "origin": "real", "sequence": "T2W", "lesion": "0",
             "patient_id": "ProstateX-0001", "slices": "central:2"},
            {"path": str(series / "adc"), "origin": "real", "sequence": "ADC", "lesion": "0",
             "patient_id": "ProstateX-0001", "slices": "central:2"},
            *({"path": f"gen{i}.png", "origin": "synthetic", "sequence": "T2W", "lesion": "0",
               "intensity": "canonical"} for i in range(2)),
        ],
    )  # fmt: skip
    assert import_manifest(engine, manifest, store=store).added == 6
    pngs = display_pngs(engine, store)
    assert_alike(pngs, 256)
    assert not any(b"ProstateX" in png for group in pngs.values() for png in group)


def phantom(rng: np.random.Generator, *, brightness: float = 1.0, grain: float = 0.0) -> np.ndarray:
    """A smooth blob image in [0, 1]; `brightness` scales it, `grain` adds fine noise."""
    y, x = np.mgrid[0:48, 0:48] / 48.0
    image = np.zeros((48, 48))
    for _ in range(4):
        cy, cx, width = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.08, 0.25)
        image += rng.uniform(0.2, 0.5) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / width**2)
    image = image * brightness + grain * rng.standard_normal(image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def import_phantoms(
    engine,
    store: AssetStore,
    folder: Path,
    *,
    n: int,
    seed: int,
    sequence: str = "T2W",
    real_cue: dict[str, float] | None = None,
    **synthetic_cue: float,
) -> None:
    """`n` real images (from n/3 patients) and `n` synthetic ones of `sequence`, imported like
    any others; `real_cue` and `synthetic_cue` are the phantom's options per origin."""
    rng = np.random.default_rng(seed)
    folder.mkdir(exist_ok=True)
    rows = []
    for origin in ("real", "synthetic"):
        for i in range(n):
            cue = synthetic_cue if origin == "synthetic" else real_cue or {}
            levels = np.round(phantom(rng, **cue) * 65535).astype(np.uint16)
            name = f"{origin}-{seed}-{i}.png"
            Image.fromarray(levels).save(folder / name)
            rows.append(
                {
                    "path": name,
                    "origin": origin,
                    "sequence": sequence,
                    "lesion": str(i % 2),
                    "patient_id": f"P{seed}-{i // 3}" if origin == "real" else "",
                    "intensity": "canonical",
                }
            )
    import_manifest(engine, write_manifest(folder, rows), store=store)


@pytest.fixture
def small_renders(monkeypatch):
    monkeypatch.setenv("VTT_RENDER_SIZE", str(RENDER_SIZE))


def verdicts(result) -> dict[str, Verdict]:
    return {s.scope: s.verdict for s in (result.pooled, *result.by_sequence)}


@pytest.mark.slow
def test_no_warning_when_real_and_synthetic_come_from_one_distribution(
    app_engine, store, tmp_path, small_renders
):
    import_phantoms(app_engine, store, tmp_path / "same", n=30, seed=11)
    result = audit_assets(app_engine, store, permutations=100)
    pooled = result.pooled
    assert (pooled.n_real, pooled.n_synthetic) == (30, 30)
    assert result.verdict == Verdict.NO_CUE and not result.warning
    assert verdicts(result) == {"all sequences": Verdict.NO_CUE, "T2W": Verdict.NO_CUE}
    assert pooled.p_value >= 0.05
    assert pooled.ci[0] < 0.5 < pooled.ci[1]
    assert "no trivial cue" in result.message
    assert [s.name for s in pooled.features] == list(FEATURE_NAMES)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cue", "telling_feature", "higher"),
    [
        ({"brightness": 1.5}, "mean gray level", True),
        # Noise lifts the black background above 0.
        ({"grain": 0.03}, "black pixel share", False),
    ],
    ids=["brighter", "grainier"],
)
def test_warning_when_synthetic_images_carry_a_trivial_cue(
    app_engine, store, tmp_path, small_renders, cue, telling_feature, higher
):
    import_phantoms(app_engine, store, tmp_path / "cue", n=30, seed=12, **cue)
    result = audit_assets(app_engine, store, permutations=100)
    pooled = result.pooled
    assert result.verdict == Verdict.CUE_FOUND and result.warning
    assert pooled.p_value < 0.05 and pooled.ci[0] > 0.5 and pooled.auc > 0.75
    by_name = {s.name: s for s in pooled.features}
    telling = by_name[telling_feature]
    assert (telling.auc if higher else 1 - telling.auc) > 0.75
    assert (telling.synthetic_mean > telling.real_mean) == higher
    # Grain used to make the compressed PNGs longer; the uncompressed renders are all alike.
    size = by_name["file size (bytes)"]
    assert (size.real_mean, size.synthetic_mean, size.auc) == (4228, 4228, 0.5)
    assert "apart" in result.message
    figure = audit_figure(result)
    # The pooled and T2W ROC curves, the chance line, and a feature bar chart per scope.
    assert len(figure.data) == 5


def import_mirrored_cue(engine, store: AssetStore, folder: Path) -> None:
    """Synthetic T2W brighter than real T2W, synthetic ADC darker than real ADC (18 images of
    each origin per sequence): pooled, both origins hold the same mix of bright and dark images.
    And 3 + 3 DWI images without a cue."""
    import_phantoms(engine, store, folder / "t2w", n=18, seed=21, brightness=2.0)
    import_phantoms(
        engine, store, folder / "adc", n=18, seed=22, sequence="ADC", real_cue={"brightness": 2.0}
    )
    import_phantoms(engine, store, folder / "dwi", n=3, seed=23, sequence="DWI")


def test_a_cue_within_each_sequence_warns_even_when_it_cancels_out_pooled(
    app_engine, store, tmp_path, small_renders
):
    import_mirrored_cue(app_engine, store, tmp_path)

    result = audit_assets(app_engine, store, permutations=40)

    assert verdicts(result) == {
        "all sequences": Verdict.NO_CUE,
        "T2W": Verdict.CUE_FOUND,
        "ADC": Verdict.CUE_FOUND,
        "DWI": Verdict.TOO_FEW,
    }
    assert result.warning and result.verdict == Verdict.CUE_FOUND
    assert [s.scope for s in result.separating] == ["T2W", "ADC"]
    assert "Within T2W, a classifier" in result.message
    assert "Within ADC, a classifier" in result.message
    t2w, adc, dwi = result.by_sequence
    assert (t2w.n_real, t2w.n_synthetic, t2w.auc > 0.9, t2w.ci[0] > 0.5) == (18, 18, True, True)
    assert adc.auc > 0.85 and adc.p_value < 0.05
    assert dwi.auc is None and "Within DWI" in dwi.message
    assert "3 real and 3 synthetic" in dwi.message
    assert len(audit_figure(result).data) == 7


def test_a_clean_library_of_several_sequences_does_not_warn(
    app_engine, store, tmp_path, small_renders
):
    import_phantoms(app_engine, store, tmp_path / "t2w", n=12, seed=31)
    import_phantoms(app_engine, store, tmp_path / "adc", n=12, seed=32, sequence="ADC")
    import_phantoms(app_engine, store, tmp_path / "dwi", n=3, seed=33, sequence="DWI")

    result = audit_assets(app_engine, store, permutations=40)

    assert verdicts(result) == {
        "all sequences": Verdict.NO_CUE,
        "T2W": Verdict.NO_CUE,
        "ADC": Verdict.NO_CUE,
        "DWI": Verdict.TOO_FEW,
    }
    assert not result.warning and result.separating == ()
    assert result.message.endswith("Too few images to check these sequences on their own: DWI.")


def test_the_audit_is_seeded(app_engine, store, tmp_path, small_renders):
    import_phantoms(app_engine, store, tmp_path / "seeded", n=12, seed=13, brightness=1.1)
    first = audit_assets(app_engine, store, permutations=30, seed=5)
    assert audit_assets(app_engine, store, permutations=30, seed=5) == first


def test_a_study_audits_only_its_own_images_and_too_few_is_said(
    engine, store, tmp_path, small_renders
):
    import_phantoms(engine, store, tmp_path / "few", n=3, seed=14)
    result = audit_assets(engine, store)
    assert result.verdict == Verdict.TOO_FEW and result.pooled.auc is None and not result.warning
    assert verdicts(result) == {"all sequences": Verdict.TOO_FEW, "T2W": Verdict.TOO_FEW}
    assert "3 real and 3 synthetic" in result.message
    study_id = create_study(
        engine, StudyPlan("audit", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 4),))
    )
    in_study = audit_assets(engine, store, study_id=study_id)
    assert in_study.pooled.n_real + in_study.pooled.n_synthetic == 4
    with pytest.raises(BlindingAuditError, match="no study with id 999"):
        audit_assets(engine, store, study_id=999)


def test_the_audit_reads_what_readers_receive_not_the_stored_display_file(
    app_engine, store, tmp_path, small_renders
):
    import_phantoms(app_engine, store, tmp_path / "stale", n=2, seed=17)
    with transaction(app_engine) as session:
        displays = session.scalars(select(Asset.display_sha256)).all()
    # A display file of another day's encoder (compressed) or render size must not count.
    for sha in displays:
        store.path(sha, ".png").write_bytes(b"stale")
    features = audit_assets(app_engine, store).pooled.features
    size = {s.name: s for s in features}["file size (bytes)"]
    received = len(render_png(np.zeros((8, 8), np.float32), size=RENDER_SIZE))
    assert size.real_mean == size.synthetic_mean == received


def test_a_missing_canonical_file_is_named(engine, store, tmp_path, small_renders):
    import_phantoms(engine, store, tmp_path / "gone", n=2, seed=15)
    with transaction(engine) as session:
        sha = session.scalars(select(Asset.canonical_sha256)).first()
    store.path(sha, ".npy").unlink()
    with pytest.raises(BlindingAuditError, match=r"canonical image of asset \d+ is missing"):
        audit_assets(engine, store)


def test_features_of_a_render():
    black = Image.new("L", (64, 64))
    black.paste(255, (8, 8, 56, 56))
    buffer = io.BytesIO()
    black.save(buffer, format="PNG")
    features = dict(zip(FEATURE_NAMES, display_features(buffer.getvalue()), strict=True))
    assert features["file size (bytes)"] == len(buffer.getvalue())
    assert features["border mean"] == 0.0 and features["border standard deviation"] == 0.0
    assert features["white pixel share"] == pytest.approx(48 * 48 / 64**2)
    assert features["black pixel share"] == pytest.approx(1 - 48 * 48 / 64**2)
    assert features["histogram 0-31"] + features["histogram 224-255"] == pytest.approx(1.0)


@pytest.mark.slow
def test_the_coordinator_page_runs_the_audit_and_plots_it(
    app_engine, data_dir, admin_password, small_renders, tmp_path
):
    import_mirrored_cue(app_engine, AssetStore(data_dir / "assets"), tmp_path)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.session_state["role"] = "coordinator"
    app.run()
    app.switch_page(str(ROOT / "pages" / "blinding_audit.py")).run()
    assert not app.exception, app.exception
    next(b for b in app.button if b.label == "Run the audit").click().run()
    assert not app.exception, app.exception
    assert not app.success
    warnings = [w.value for w in app.warning]
    assert len(warnings) == 2
    assert warnings[0].startswith("Within T2W, a classifier")
    assert warnings[1].startswith("Within ADC, a classifier")
    assert app.get("plotly_chart")
    assert len(app.dataframe) == 2
    scopes = app.dataframe[0].value
    assert scopes["images"].tolist() == ["all sequences", "T2W", "ADC", "DWI"]
    assert scopes["verdict"].tolist() == [
        "no cue found",
        "real and synthetic are separable",
        "real and synthetic are separable",
        "too few images to tell",
    ]
    assert scopes[["real", "synthetic"]].values.tolist() == [[39, 39], [18, 18], [18, 18], [3, 3]]
    assert scopes["permutation p"].iloc[1] < 0.05 and pd.isna(scopes["permutation p"].iloc[3])
    assert "AUC alone, T2W" in app.dataframe[1].value.columns
