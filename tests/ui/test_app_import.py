"""The landing page and the coordinator's import page, through app.py (Streamlit AppTest)."""

from __future__ import annotations

import csv
import io
import re
import tempfile
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from study.db import transaction
from study.imaging.manifest import COLUMNS
from study.models import Asset

pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def labelled(app: AppTest, label: str):
    return next(t for t in app.text_input if t.label == label)


def signed_in_coordinator(password: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    assert not app.exception, app.exception
    labelled(app, "User name").set_value("coordinator")
    labelled(app, "Password").set_value(password)
    next(b for b in app.button if b.label == "Sign in").click().run()
    assert not app.exception, app.exception
    assert app.session_state["role"] == "coordinator"
    return app


def assets_in(engine) -> int:
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(Asset))


def test_landing_page_says_what_the_app_does_and_refuses_a_wrong_password(app_engine):
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    assert "VTT Studio" in app.title[0].value
    assert any("Visual Turing Test" in m.value for m in app.markdown)
    labelled(app, "User name").set_value("coordinator")
    labelled(app, "Password").set_value("wrong")
    next(b for b in app.button if b.label == "Sign in").click().run()
    assert "role" not in app.session_state
    assert app.error


def test_import_page_is_neither_listed_for_nor_usable_by_an_anonymous_visitor(app_engine):
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        app.switch_page("pages/import_assets.py")
    # Run directly, the page's own guard stops before showing anything.
    page = AppTest.from_file(str(Path(APP).parent / "pages" / "import_assets.py"))
    page.run()
    assert page.error and not page.button and not page.text_input


def test_coordinator_imports_real_prostatex_series_from_a_server_manifest(
    app_engine, admin_password, shared_data, tmp_path
):
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "origin", "sequence", "lesion", "patient_id", "slices"])
        for sequence, folder in [("T2W", "t2w"), ("ADC", "adc"), ("DWI", "hbv")]:
            series = shared_data / "prostatex" / "ProstateX-0001" / folder
            writer.writerow([series, "real", sequence, "0", "ProstateX-0001", "central:2"])
    app = signed_in_coordinator(admin_password)
    app.switch_page("pages/import_assets.py").run()
    app.text_input(key="server-manifest").set_value(str(manifest)).run()
    next(b for b in app.button if b.label == "Import manifest").click().run()
    assert not app.exception, app.exception
    assert [s.value for s in app.success] == ["added 6 assets (0 were already in the library)"]
    assert assets_in(app_engine) == 6


def test_a_bad_server_manifest_imports_nothing_and_names_the_problem(
    app_engine, admin_password, tmp_path
):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "ok.png")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,origin,sequence,lesion,patient_id\nok.png,real,T2W,0,P1\nok.png,real,MRI-X,0,P1\n"
    )
    app = signed_in_coordinator(admin_password)
    app.switch_page("pages/import_assets.py").run()
    app.text_input(key="server-manifest").set_value(str(manifest)).run()
    next(b for b in app.button if b.label == "Import manifest").click().run()
    message = app.error[0].value
    assert "Nothing was imported" in message and "line 3" in message and "MRI-X" in message
    assert assets_in(app_engine) == 0


# --- errors of an upload: named by the uploaded file, one problem per line -----------------------

HEADER = "path,origin,sequence,lesion,patient_id"


def png_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 255, (8, 8), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def zipped(members: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def temporary_folders(monkeypatch) -> list[Path]:
    """Every folder tempfile makes while the test runs: the page unpacks uploads into one."""
    made: list[Path] = []
    real = tempfile.mkdtemp

    def recording(*args, **kwargs):
        made.append(Path(real(*args, **kwargs)))
        return str(made[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", recording)
    return made


def coordinator_on_import_page() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.session_state["role"] = "coordinator"
    app.run()
    app.switch_page("pages/import_assets.py").run()
    return app


def import_upload(app: AppTest, name: str, data: bytes) -> AppTest:
    app.file_uploader[0].set_value((name, data, "application/zip")).run()
    next(b for b in app.button if b.label == "Import upload").click().run()
    assert not app.exception, app.exception
    return app


def refusal(app: AppTest) -> list[str]:
    """The problems the page lists under its one error, in plain text."""
    (error,) = app.error
    lead, _, listed = error.value.partition("\n\n")
    assert lead == "Nothing was imported."
    lines = listed.splitlines()
    assert all(line.startswith("- ") for line in lines), lines
    # The page escapes markdown, so that a file name cannot turn into formatting.
    return [re.sub(r"\\(.)", r"\1", line.removeprefix("- ")) for line in lines]


def assert_no_server_path(app: AppTest, folders: list[Path]) -> None:
    shown = " ".join(e.value for e in app.error)
    assert folders, "the page unpacked nothing"
    # Library messages may quote their own build folders under the system's temporary folder.
    system = tempfile.gettempdir()
    for folder in folders:
        for part in set(folder.parts) - set(Path(system).parts):
            assert part not in shown, f"{part!r} of {folder} is shown: {shown}"
        # Not even cut short, as one_line() shortens a library's message.
        stub = str(folder)[: len(system) + 2]
        assert stub not in shown, f"{stub!r} of {folder} is shown: {shown}"


GOOD = {"images/a.png": png_bytes(1), "images/b.png": png_bytes(2), "images/bad.png": b"junk"}
BAD_UPLOADS = {
    "bad column": (
        {"manifest.csv": f"{HEADER},pirad\nimages/a.png,real,T2W,0,P1,3\n", **GOOD},
        [
            "upload.zip: manifest.csv: line 1: unknown column 'pirad'; known columns are "
            + ", ".join(COLUMNS)
        ],
    ),
    "bad values in two rows": (
        {
            "manifest.csv": f"{HEADER}\nimages/a.png,real,T2W,0,P1\n"
            "images/b.png,real,MRI-X,0,P1\nimages/b.png,real,T2W,maybe,\n",
            **GOOD,
        },
        [
            "upload.zip: manifest.csv: line 3: images/b.png: unknown sequence 'MRI-X'; use one of "
            "'t2w', 't2', 't2-w', 't2-weighted', 'adc', 'dwi', 'dw', 'hbv', 'high-b', 'highb', "
            "'other'",
            "upload.zip: manifest.csv: line 4: images/b.png: unknown lesion 'maybe'; use one of "
            "'1', 'yes', 'true', '0', 'no', 'false', '', 'unknown'",
            "upload.zip: manifest.csv: line 4: images/b.png: patient_id is empty; it is required "
            "for real images",
        ],
    ),
    "missing image": (
        {"study/manifest.csv": f"{HEADER}\nimages/gone.png,real,T2W,0,P1\n"},
        [
            "upload.zip: study/manifest.csv: line 2: images/gone.png: does not exist "
            "(study/images/gone.png); check the path"
        ],
    ),
    "unreadable image": (
        {"manifest.csv": f"{HEADER}\nimages/bad.png,real,T2W,0,P1\n", **GOOD},
        [
            "upload.zip: manifest.csv: line 2: images/bad.png: cannot be read as a PNG, JPEG or "
            "TIFF picture (cannot identify image file <_io.BytesIO object at 0x...>); the file is "
            "damaged or of another type"
        ],
    ),
    "paths out of the upload": (
        {"manifest.csv": f"{HEADER}\n../a.png,real,T2W,0,P1\n/etc/hostname,real,T2W,0,P1\n"},
        [
            "upload.zip: manifest.csv: line 2: ../a.png: path leaves the manifest folder "
            "upload.zip; put the file inside that folder",
            "upload.zip: manifest.csv: line 3: /etc/hostname: absolute paths are not allowed in "
            "this manifest; use a path relative to the manifest folder upload.zip",
        ],
    ),
    "one image twice with other labels": (
        {
            "manifest.csv": f"{HEADER}\nimages/a.png,real,T2W,0,P1\nimages/a.png,real,T2W,1,P1\n",
            **GOOD,
        },
        [
            "upload.zip: manifest.csv: images/a.png (line 3, slice 0) repeats images/a.png "
            "(line 2, slice 0) with other metadata"
        ],
    ),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_a_bad_upload_is_refused_naming_the_upload_one_problem_per_line(
    app_engine, temporary_folders, case
):
    members, problems = BAD_UPLOADS[case]
    app = import_upload(coordinator_on_import_page(), "upload.zip", zipped(members))
    # Pillow names the buffer it read by its address.
    assert [re.sub(r"0x[0-9a-f]+", "0x...", problem) for problem in refusal(app)] == problems
    assert_no_server_path(app, temporary_folders)
    assert assets_in(app_engine) == 0


def test_a_conflicting_reimport_of_an_upload_names_the_upload(app_engine, temporary_folders):
    app = coordinator_on_import_page()
    first = {"manifest.csv": f"{HEADER}\nimages/a.png,real,T2W,0,P1\n", **GOOD}
    import_upload(app, "first.zip", zipped(first))
    assert [s.value for s in app.success] == ["added 1 assets (0 were already in the library)"]
    again = {"manifest.csv": f"{HEADER}\nimages/a.png,real,T2W,1,P2\n", **GOOD}
    import_upload(app, "second.zip", zipped(again))
    assert refusal(app) == [
        "second.zip: manifest.csv: images/a.png (line 2, slice 0) was imported before with other "
        "metadata (lesion: stored 0, manifest 1; patient_id: stored 'P1', manifest 'P2')"
    ]
    assert_no_server_path(app, temporary_folders)
    assert assets_in(app_engine) == 1


def test_a_library_message_quoting_an_unpacked_file_names_it_inside_the_upload(
    app_engine, temporary_folders
):
    # SimpleITK quotes the full path of the voxel file it misses, and one_line() cuts that
    # message short, possibly inside the server's folder.
    header = "ObjectType = Image\nNDims = 3\nDimSize = 4 4 2\nElementType = MET_UCHAR\n"
    members = {
        "manifest.csv": f"{HEADER}\nscan.mhd,real,T2W,0,P1\n",
        "scan.mhd": header + "ElementDataFile = scan.raw\n",
    }
    app = import_upload(coordinator_on_import_page(), "upload.zip", zipped(members))
    (problem,) = refusal(app)
    assert problem.startswith("upload.zip: manifest.csv: line 2: scan.mhd: "), problem
    assert problem.endswith("; the file is truncated or damaged"), problem
    assert_no_server_path(app, temporary_folders)


def test_file_names_in_a_refusal_are_not_read_as_markdown(app_engine):
    members = {"manifest.csv": f"{HEADER}\n_scan_*1*.png,real,T2W,0,P_1\n"}
    app = import_upload(coordinator_on_import_page(), "upload.zip", zipped(members))
    (error,) = app.error
    assert error.value == (
        "Nothing was imported.\n\n- upload.zip: manifest.csv: line 2: \\_scan\\_\\*1\\*.png: "
        "does not exist (\\_scan\\_\\*1\\*.png); check the path"
    )


def test_the_lesion_options_reach_the_import_and_bad_labels_are_refused(
    app_engine, admin_password, tmp_path
):
    labels = np.zeros((16, 16, 3), np.uint8)
    labels[2:5, 2:5, 1] = 1  # 9 voxels of label 1
    labels[2:6, 2:6, 2] = 3  # 16 voxels of label 3
    affine = np.diag([0.5, 0.5, 3.0, 1.0])
    nib.save(
        nib.Nifti1Image(np.random.default_rng(2).random((16, 16, 3)), affine), tmp_path / "s.nii"
    )
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "m.nii")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,origin,sequence,lesion,patient_id,slices,mask\ns.nii,real,T2W,,P1,all,m.nii\n"
    )
    app = signed_in_coordinator(admin_password)
    app.switch_page("pages/import_assets.py").run()
    app.text_input(key="server-manifest").set_value(str(manifest)).run()
    next(t for t in app.text_input if t.label == "Lesion labels").set_value("3, x").run()
    next(b for b in app.button if b.label == "Import manifest").click().run()
    assert "lesion labels '3, x' are not whole numbers" in app.error[0].value
    assert assets_in(app_engine) == 0
    next(t for t in app.text_input if t.label == "Lesion labels").set_value("1").run()
    next(n for n in app.number_input if n.label == "Lesion voxels per slice").set_value(9).run()
    next(b for b in app.button if b.label == "Import manifest").click().run()
    assert not app.exception, app.exception
    assert [s.value for s in app.success] == ["added 3 assets (0 were already in the library)"]
    with transaction(app_engine) as session:
        truth = session.execute(select(Asset.slice_index, Asset.lesion).order_by(Asset.id)).all()
    assert truth == [(0, 0), (1, 1), (2, 0)]
    app.switch_page("pages/library.py").run()
    assert not app.exception, app.exception
    assert any(
        "3 of these assets took their lesion truth from a mask" in c.value for c in app.caption
    )
