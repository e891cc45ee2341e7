"""Importing manifests into the asset library: all or nothing, idempotent, conflicts named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from study.db import transaction
from study.imaging.canonical import canonical_from_bytes
from study.imaging.errors import ShownPaths, VTTError
from study.imaging.manifest import write_manifest
from study.importer import ImportConflictError, import_manifest
from study.models import Asset
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
        assert [a.slice_index for a in by_sequence["ADC"]] == [7, 8, 9, 10]
        assert {(a.rows, a.cols) for a in by_sequence["ADC"]} == {(128, 84)}
        assert {(a.spacing_row_mm, a.spacing_col_mm) for a in by_sequence["ADC"]} == {(2.0, 2.0)}
        t2w_prostatex = [a for a in by_sequence["T2W"] if a.patient_id == "ProstateX-0000"]
        assert {(a.rows, a.cols) for a in t2w_prostatex} == {(384, 384)}
        synthetic = [a for a in assets if a.origin == "synthetic"]
        assert [(a.lesion, a.patient_id) for a in synthetic] == [(0, "")]
        assert sorted(a.lesion for a in assets if a.patient_id.startswith("G")) == [0, 1]
        canonical = canonical_from_bytes(store.read(assets[-1].canonical_sha256, ".npy"))
        assert canonical.shape == (128, 84) and canonical.dtype == np.float32
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
