"""Write a phantom cohort in the layout of the public PI-CAI dataset, so that its importer
(`python -m study prepare-picai`) is tested on files of the real layout without a download.

The layout follows the PI-CAI images on Zenodo (one folder per patient, one MetaImage per
study and sequence) and the picai_labels repository (csPCa lesion delineations as NIfTI label
volumes in the T2W's geometry, and the clinical marksheet):

    OUT/images/<patient_id>/<patient_id>_<study_id>_{t2w,adc,hbv,sag,cor}.mha
    OUT/labels/csPCa_lesion_delineations/human_expert/resampled/<patient_id>_<study_id>.nii.gz
    OUT/labels/csPCa_lesion_delineations/AI/Bosma22a/<patient_id>_<study_id>.nii.gz
    OUT/labels/clinical_information/marksheet.csv

As in PI-CAI, T2W and the diffusion series have different grids: T2W on the phantom's grid,
ADC and high-b DWI (`hbv`) as the coarse diffusion acquisition gives them (2.5 times the pixel
size) over a field of view cut short front to back, so importing them needs resampling. Only
clinically significant lesions (ISUP grade 2 or more) are delineated: the expert's label is
the lesion's ISUP grade (2-5), the AI's is 1; a PI-RADS 3 lesion is often ISUP 1 (indolent)
and then shows on the images but in no label, and patients without a lesion have all-zero
labels. `_sag` and `_cor` are the T2W restacked, standing in for the sagittal and coronal
series that PI-CAI holds beside the axial ones.
"""

from __future__ import annotations

import csv
import datetime
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from synth.contract import PhantomRequest, option_spec
from synth.phantom.anatomy import FOV_MM
from synth.phantom.patient import PhantomPatient, make_patient
from synth.phantom.writer import check_cohort, has_lesion, patient_id, patient_seed

LESIONS_DIR = Path("csPCa_lesion_delineations")
EXPERT_LABELS = LESIONS_DIR / "human_expert" / "resampled"
AI_LABELS = LESIONS_DIR / "AI" / "Bosma22a"
MARKSHEET = Path("clinical_information") / "marksheet.csv"
MARKSHEET_COLUMNS = (
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
)
# The diffusion series cover this share of the field of view front to back (PI-CAI's are
# often 128 x 84 pixels of 2 mm, wider than deep).
DIFFUSION_AP_SHARE = 0.7
# ISUP grade of a lesion given its PI-RADS category: (grades, probabilities). Higher categories
# hold clinically significant cancer (ISUP >= 2) more often, after the PI-RADS v2.1 literature.
ISUP_BY_PIRADS: dict[int, tuple[tuple[int, ...], tuple[float, ...]]] = {
    3: ((1, 2), (0.6, 0.4)),
    4: ((1, 2, 3), (0.3, 0.4, 0.3)),
    5: ((2, 3, 4, 5), (0.2, 0.3, 0.25, 0.25)),
}
GLEASON_BY_ISUP = {1: "3+3", 2: "3+4", 3: "4+3", 4: "4+4", 5: "4+5"}
CSPCA_ISUP = 2
FIRST_STUDY_ID = 1_000_001
FIRST_MRI_DATE = datetime.date(2018, 1, 1)


@dataclass(frozen=True)
class PicaiCase:
    """One phantom study as PI-CAI names, grades and describes it; `isup` is None without a
    lesion."""

    patient_id: str
    study_id: str
    isup: int | None
    mri_date: datetime.date
    age: int
    psa: float

    @property
    def name(self) -> str:
        """`<patient_id>_<study_id>`, the stem of every file of the study."""
        return f"{self.patient_id}_{self.study_id}"

    @property
    def significant(self) -> bool:
        """Clinically significant prostate cancer (csPCa): ISUP grade 2 or more."""
        return self.isup is not None and self.isup >= CSPCA_ISUP


def picai_case(seed: int, index: int, patient: PhantomPatient) -> PicaiCase:
    """Patient `index` of the cohort of `seed` as a PI-CAI study: its lesion's grade and
    clinical values, drawn from a stream of their own so that the images do not change, and
    in a fixed order so that the lesion changes only the grade."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, 1)))
    grade, days = rng.random(), int(rng.integers(0, 4 * 365))
    age, psa = int(rng.integers(50, 80)), float(np.exp(rng.normal(np.log(7.0), 0.5)))
    isup = None
    if patient.pirads is not None:
        grades, chances = ISUP_BY_PIRADS[patient.pirads]
        pick = int(np.searchsorted(np.cumsum(chances), grade, side="right"))
        isup = grades[min(pick, len(grades) - 1)]
    return PicaiCase(
        patient_id=patient_id(seed, index),
        study_id=str(FIRST_STUDY_ID + index),
        isup=isup,
        mri_date=FIRST_MRI_DATE + datetime.timedelta(days=days),
        age=age,
        psa=psa,
    )


def write_picai(
    out: Path,
    *,
    patients: int,
    seed: int,
    size: int = option_spec(PhantomRequest, "size").default,
    slices: int = option_spec(PhantomRequest, "slices").default,
    lesion_fraction: float = option_spec(PhantomRequest, "lesion_fraction").default,
    progress: bool = False,
) -> Path:
    """Write `patients` phantom patients in the PI-CAI layout into the new or empty folder
    `out`; return `out`. Patient k is the same as in `write_phantom` with the same options."""
    out = Path(out)
    check_cohort(
        out,
        patients=patients,
        seed=seed,
        size=size,
        slices=slices,
        lesion_fraction=lesion_fraction,
    )
    labels = out / "labels"
    for folder in (out / "images", labels / EXPERT_LABELS, labels / AI_LABELS):
        folder.mkdir(parents=True)
    (labels / MARKSHEET).parent.mkdir()
    marks = []
    for index in tqdm(
        range(patients), desc="phantom", unit="patient", disable=not progress, file=sys.stderr
    ):
        patient = make_patient(
            patient_seed(seed, index),
            size=size,
            n_slices=slices,
            lesion=has_lesion(seed, index, lesion_fraction),
        )
        case = picai_case(seed, index, patient)
        _write_study(out, patient, case)
        marks.append(_marksheet_row(patient, case))
    with (labels / MARKSHEET).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MARKSHEET_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(marks)
    return out


def _write_study(out: Path, patient: PhantomPatient, case: PicaiCase) -> None:
    folder = out / "images" / case.patient_id
    folder.mkdir()
    t2w = _t2w_image(patient)
    images = {
        "t2w": t2w,
        "adc": _diffusion_image(patient, patient.adc_acquired),
        "hbv": _diffusion_image(patient, patient.dwi_acquired),
        # Restacked along the patient's left-right and front-back axes: other orientations
        # of the same T2W, which an importer of axial series has to leave alone.
        "sag": sitk.PermuteAxes(t2w, [1, 2, 0]),
        "cor": sitk.PermuteAxes(t2w, [0, 2, 1]),
    }
    for kind, image in images.items():
        sitk.WriteImage(image, str(folder / f"{case.name}_{kind}.mha"), useCompression=True)

    # Only clinically significant lesions are delineated: the expert's with their grade.
    lesion = (patient.lesion if case.significant else np.zeros_like(patient.lesion)).astype(
        np.uint8
    )
    for labels, value in ((EXPERT_LABELS, case.isup or 0), (AI_LABELS, 1)):
        label = sitk.GetImageFromArray(lesion * np.uint8(value))
        label.CopyInformation(t2w)
        path = out / "labels" / labels / f"{case.name}.nii.gz"
        sitk.WriteImage(label, str(path), useCompression=True)


def _t2w_image(patient: PhantomPatient) -> sitk.Image:
    """The T2W on the phantom's grid. Array axes (slice, row, column) run inferior to
    superior, anterior to posterior, right to left: the LPS axes, so the direction is the
    identity and the origin is the centre of the first voxel."""
    half = (patient.size - 1) / 2 * patient.pixel_mm
    return _image(
        patient.t2w,
        spacing=(patient.pixel_mm, patient.pixel_mm, patient.slice_mm),
        origin=(-half, -half, _first_slice_mm(patient)),
    )


def _diffusion_image(patient: PhantomPatient, acquired: np.ndarray) -> sitk.Image:
    """A diffusion series on its acquisition grid, its rows cut to DIFFUSION_AP_SHARE of the
    field of view around the centre. Acquired pixel j spans [j, j + 1) pixels of
    `acquired_pixel_mm` from the field of view's edge."""
    pixel = patient.acquired_pixel_mm
    n = acquired.shape[-1]
    rows = round(n * DIFFUSION_AP_SHARE)
    first = (n - rows) // 2
    edge = -FOV_MM / 2
    return _image(
        acquired[:, first : first + rows, :],
        spacing=(pixel, pixel, patient.slice_mm),
        origin=(edge + 0.5 * pixel, edge + (first + 0.5) * pixel, _first_slice_mm(patient)),
    )


def _first_slice_mm(patient: PhantomPatient) -> float:
    """The slices are centred on the middle of the gland, as in `PhantomPatient.affine`."""
    return -(patient.n_slices - 1) / 2 * patient.slice_mm


def _image(
    volume: np.ndarray, *, spacing: tuple[float, float, float], origin: tuple[float, float, float]
) -> sitk.Image:
    image = sitk.GetImageFromArray(np.rint(np.clip(volume, 0, 65535)).astype(np.uint16))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def _marksheet_row(patient: PhantomPatient, case: PicaiCase) -> dict[str, object]:
    """The study's row of the marksheet, with the prostate volume measured on the phantom.
    Biopsied when a lesion was seen (PI-RADS >= 3); negatives are confirmed by MRI alone, as
    most of PI-CAI's are."""
    volume_ml = float(patient.prostate.sum()) * patient.pixel_mm**2 * patient.slice_mm / 1000
    biopsied = case.isup is not None
    return {
        "patient_id": case.patient_id,
        "study_id": case.study_id,
        "mri_date": case.mri_date.isoformat(),
        "patient_age": case.age,
        "psa": f"{case.psa:.1f}",
        "psad": f"{case.psa / volume_ml:.2f}",
        "prostate_volume": f"{volume_ml:.1f}",
        "histopath_type": "MRBx" if biopsied else "",
        "lesion_GS": GLEASON_BY_ISUP[case.isup] if case.isup is not None else "",
        "lesion_ISUP": case.isup if biopsied else "",
        "case_ISUP": case.isup or 0,
        "case_csPCa": "YES" if case.significant else "NO",
        "center": "PHANTOM",
    }
