"""Write a phantom cohort: NIfTI volumes, 16-bit PNG slices and the manifest that lists them."""

from __future__ import annotations

import gzip
import io
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image
from tqdm import tqdm

from study.imaging.manifest import write_manifest
from study.imaging.types import Intensity, Lesion, Origin, Sequence
from synth.contract import PhantomRequest, option_spec
from synth.phantom.patient import (
    SIZE_RANGE,
    SLICES_RANGE,
    PhantomError,
    PhantomPatient,
    check_range,
    make_patient,
)

SEQUENCES = (Sequence.T2W, Sequence.ADC, Sequence.DWI)
MAX_PATIENTS = 100_000


def patient_seed(seed: int, index: int) -> int:
    """Patient `index` of a cohort gets the same seed whatever the cohort's size."""
    state = np.random.SeedSequence(seed, spawn_key=(index,)).generate_state(1, np.uint64)
    return int(state[0])


def has_lesion(seed: int, index: int, fraction: float) -> bool:
    """Whether patient `index` has a lesion, so that the first n patients of any cohort hold
    n * `fraction` lesion patients, give or take less than one.

    A seeded phase spreads the lesion patients differently for each seed; the choice for patient
    `index` does not depend on the cohort's size.
    """
    phase = np.random.SeedSequence(seed).generate_state(1, np.uint64)[0] / 2.0**64
    return int(np.floor((index + 1) * fraction + phase)) > int(np.floor(index * fraction + phase))


def patient_id(seed: int, index: int) -> str:
    """`PH<seed>-<n>`: cohorts of different seeds never share a patient id."""
    return f"PH{seed}-{index + 1:04d}"


def check_cohort(
    out: Path, *, patients: int, seed: int, size: int, slices: int, lesion_fraction: float
) -> None:
    """PhantomError unless the options are in range and `out` is a new or empty folder."""
    check_range("patients", patients, 1, MAX_PATIENTS)
    check_range("size", size, *SIZE_RANGE)
    check_range("slices", slices, *SLICES_RANGE)
    check_range("lesion fraction", lesion_fraction, 0.0, 1.0)
    if seed < 0:
        raise PhantomError(f"seed must be a non-negative integer, got {seed}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PhantomError(
            f"{out} is not an empty folder: choose a new one (nothing is overwritten)"
        )


def write_phantom(
    out: Path,
    *,
    patients: int,
    seed: int,
    size: int = option_spec(PhantomRequest, "size").default,
    slices: int = option_spec(PhantomRequest, "slices").default,
    lesion_fraction: float = option_spec(PhantomRequest, "lesion_fraction").default,
    progress: bool = False,
) -> Path:
    """Write `patients` phantom patients into the empty or new folder `out`; return the manifest.

    Layout: `volumes/PH7-0001_T2W.nii.gz` (one per patient and sequence),
    `slices/PH7-0001_s03_T2W.png`
    (16-bit grayscale; ADC as integer 10^-6 mm^2/s) and `manifest.csv` with one row per PNG.
    Phantom images stand in for acquired ones, so their origin is `real`. A lesion shows on
    2-5 of 10 slices of its patient, so lesion slices are the minority: with the default
    fraction about one slice in six; a balanced study samples the others down.
    """
    out = Path(out)
    check_cohort(
        out, patients=patients, seed=seed, size=size, slices=slices, lesion_fraction=lesion_fraction
    )
    (out / "volumes").mkdir(parents=True)
    (out / "slices").mkdir()

    rows: list[dict[str, object]] = []
    bar = tqdm(
        total=patients, desc="phantom", unit="patient", disable=not progress, file=sys.stderr
    )
    # Writing (file creation, PNG and gzip encoding) runs beside the simulation of the next
    # patient; one patient in flight keeps memory bounded and the manifest in order.
    with bar, ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[list[dict[str, object]]] | None = None
        for index in range(patients):
            patient = make_patient(
                patient_seed(seed, index),
                size=size,
                n_slices=slices,
                lesion=has_lesion(seed, index, lesion_fraction),
            )
            if pending is not None:
                rows += pending.result()
                bar.update()
            pending = pool.submit(_write_patient, out, patient, patient_id(seed, index))
        assert pending is not None
        rows += pending.result()
        bar.update()

    return write_manifest(out / "manifest.csv", rows)


def _write_patient(out: Path, patient: PhantomPatient, patient_id: str) -> list[dict[str, object]]:
    stored = {sequence: _to_uint16(patient.volume(sequence)) for sequence in SEQUENCES}
    for sequence, volume in stored.items():
        # NIfTI's first axis is the column (x), its second the row (y).
        image = nib.Nifti1Image(volume.transpose(2, 1, 0), patient.affine)
        image.header.set_xyzt_units("mm")
        # One gzip call without a timestamp: reproducible bytes, and twice as fast as
        # nibabel's streamed writer.
        packed = gzip.compress(image.to_bytes(), compresslevel=1, mtime=0)
        (out / "volumes" / f"{patient_id}_{sequence}.nii.gz").write_bytes(packed)

    lesion_slices = set(patient.lesion_slices)
    rows = []
    for k in range(patient.n_slices):
        on_lesion = k in lesion_slices
        pair_key = f"{patient_id}-s{k:02d}"
        for sequence in SEQUENCES:
            path = Path("slices") / f"{patient_id}_s{k:02d}_{sequence}.png"
            # Noisy 16-bit T2W and DWI slices barely deflate (about 10 %), and compressing
            # would double the time it takes to write a slice; one write call per file is
            # cheaper than the encoder's many small ones.
            png = io.BytesIO()
            Image.fromarray(stored[sequence][k]).save(png, format="PNG", compress_level=0)
            (out / path).write_bytes(png.getvalue())
            rows.append(
                {
                    "path": path,
                    "origin": Origin.REAL,
                    "sequence": sequence,
                    "lesion": Lesion.YES if on_lesion else Lesion.NO,
                    "pirads": patient.pirads if on_lesion else None,
                    "patient_id": patient_id,
                    "slice_index": k,
                    "pair_key": pair_key,
                    "intensity": Intensity.RAW,
                }
            )
    return rows


def _to_uint16(volume: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(volume, 0, 65535)).astype(np.uint16)
