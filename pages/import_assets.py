"""Coordinator: import images from an uploaded archive or a manifest on the server."""

import re
import tempfile
from pathlib import Path

import streamlit as st

from pages import ui
from study import settings
from study.imaging.errors import ShownPaths, VTTError
from study.imaging.lesions import DEFAULT_MIN_LESION_VOXELS, parse_lesion_labels
from study.importer import import_manifest
from study.uploads import unpack_upload

ui.require(ui.Role.COORDINATOR)
st.title("Import images")
st.markdown(
    "A manifest is a CSV with the columns `path, origin, sequence, lesion, patient_id` and "
    "optionally `slice_index, slices, series, pair_key, pirads, intensity, study, mask` and the "
    "generator's provenance. Every row is checked first; then all of it is imported, or nothing."
)
with st.expander("Lesion masks"):
    st.caption(
        "A row's `mask` (a label volume) gives each of its slices the truth: a slice shows a "
        "lesion when it holds at least this many voxels of the lesion labels."
    )
    min_lesion_voxels = int(
        st.number_input(
            "Lesion voxels per slice", min_value=1, value=DEFAULT_MIN_LESION_VOXELS, step=1
        )
    )
    labels_text = st.text_input(
        "Lesion labels",
        placeholder="every label > 0",
        help="The mask labels that count as lesion, e.g. 2,3,4,5 for PI-CAI's ISUP >= 2",
    )


# Problems quote file names, which markdown would otherwise format (`_scan_.png` in italics);
# an underscore inside a word (patient_id) formats nothing and is left as it is.
_MARKDOWN = re.compile(r"([\\`*\[\]<>$~|]|(?<![^\W_])_|_(?![^\W_]))")


def refuse(problems: list[str]) -> None:
    """Say that nothing was imported, then list the problems, one per line."""
    listed = "\n".join("- " + _MARKDOWN.sub(r"\\\1", problem) for problem in problems)
    st.error(f"Nothing was imported.\n\n{listed}")


def run_import(manifest: Path, *, allow_absolute: bool, shown: ShownPaths | None = None) -> None:
    bar = st.progress(0.0, text="Reading images")

    def progress(stage: str, done: int, total: int) -> None:
        label = "Reading images" if stage == "load" else "Storing"
        bar.progress(done / max(total, 1), text=f"{label}: {done} of {total}")

    try:
        result = import_manifest(
            ui.engine(),
            manifest,
            allow_absolute=allow_absolute,
            progress=progress,
            shown=shown,
            min_lesion_voxels=min_lesion_voxels,
            lesion_labels=parse_lesion_labels(labels_text),
        )
    except VTTError as error:
        bar.empty()
        refuse(error.problems)
        return
    bar.empty()
    st.success(f"added {result.added} assets ({result.unchanged} were already in the library)")


upload_tab, server_tab = st.tabs(["Upload", "Manifest on the server"])
with upload_tab:
    limit_mb = int(settings.get("VTT_MAX_UPLOAD_MB"))
    upload = st.file_uploader(
        "A .zip holding manifest.csv and the images it names (relative paths)",
        type=["zip", "csv"],
    )
    if upload is not None and st.button("Import upload", type="primary"):
        with tempfile.TemporaryDirectory(dir=settings.data_dir()) as folder:
            try:
                manifest = unpack_upload(
                    upload.name, upload.getvalue(), Path(folder), max_bytes=limit_mb * 2**20
                )
            except VTTError as error:
                refuse(error.problems)
            else:
                # The coordinator knows the files by the upload, not by where they were unpacked.
                shown = ShownPaths(Path(folder), upload.name)
                run_import(manifest, allow_absolute=False, shown=shown)
with server_tab:
    path = st.text_input("Path of a manifest CSV on this server", key="server-manifest")
    if path and st.button("Import manifest", type="primary"):
        manifest = Path(path).expanduser()
        if not manifest.is_file():
            refuse([f"{manifest}: no such file on the server"])
        else:
            run_import(manifest, allow_absolute=True)
