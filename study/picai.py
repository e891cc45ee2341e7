"""A manifest from the public PI-CAI dataset, or from ProstateX-style DICOM folders.

PI-CAI (https://pi-cai.grand-challenge.org) ships its images (Zenodo) apart from its labels
(the picai_labels repository):

    IMAGES/<patient_id>/<patient_id>_<study_id>_{t2w,adc,hbv}.mha     (_sag, _cor: ignored)
    LABELS/csPCa_lesion_delineations/human_expert/resampled/<patient_id>_<study_id>.nii.gz
    LABELS/clinical_information/marksheet.csv                          (optional)

A label volume holds each clinically significant lesion as its ISUP grade (2-5; the AI
delineations of AI/Bosma22a hold 1), on the T2W's grid ("resampled"; labels on other grids are
fitted to it as the importer does); studies without such a lesion have all-zero labels, and
studies whose csPCa was recorded but not delineated have none. ProstateX-style folders
(`--dicom`) hold DICOM series, IMAGES/<patient>/[<study>/]<series>/, named by their description
(t2w or t2...tra, adc, hbv or ...calc_bval), with optional labels LABELS/<patient>.nii.gz.

Each study becomes three manifest rows (T2W, ADC, DWI) of one patient and study, with the
label volume as their `mask` and `lesion` left empty: the importer takes the lesion of each
slice from the mask. The studies are read as the importer will read these rows (study.imaging:
ADC and DWI resampled onto the T2W's slices, the label fitted to them), so the summary's
lesion slices are the importer's, for the same `LesionRule` (`--lesion-labels`,
`--min-lesion-voxels`), and ADC and DWI count the T2W's slices.

Every file is read before anything is written; a study that lacks a file is refused, or with
`skip_incomplete` listed and left out; a file that cannot be read is always refused.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from study.imaging.errors import ImagingError, VTTError, one_line
from study.imaging.lesions import LesionRule
from study.imaging.load import (
    MAX_IMAGE_PIXELS,
    load_volume,
    parse_slice_choice,
    validate_slice_spec,
)
from study.imaging.manifest import DEFAULT_SLICES, write_manifest
from study.imaging.mask import mask_truth, read_mask
from study.imaging.pairing import PAIRED_SEQUENCES, resample_onto
from study.imaging.types import Lesion, Origin, Sequence

SEQUENCES = (Sequence.T2W, Sequence.ADC, Sequence.DWI)
PICAI_SUFFIXES = {"t2w": Sequence.T2W, "adc": Sequence.ADC, "hbv": Sequence.DWI}
LESIONS_DIR = "csPCa_lesion_delineations"
DEFAULT_LABELS_SUBDIR = "human_expert/resampled"
MARKSHEET = Path("clinical_information") / "marksheet.csv"
MANIFEST_NAME = "manifest.csv"
LABEL_SUFFIX = ".nii.gz"
SKIP_HINT = "pass --skip-incomplete to leave such studies out"
# <patient_id>_<study_id>_<kind>.mha; PI-CAI's ids are digits, any text without "_" will do.
_PICAI_NAME = re.compile(r"([^_]+)_([^_]+)_([^_.]+)\.mha", re.IGNORECASE)


class PrepareError(VTTError):
    """Input that cannot become a manifest; one line per problem, each naming its file."""


@dataclass(frozen=True)
class Study:
    """The files of one study of one patient; `missing` says, per file, what is lacking."""

    patient_id: str
    study_id: str
    images: dict[Sequence, Path]
    label: Path | None
    missing: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """`<patient_id>_<study_id>` as PI-CAI names its files; the patient alone without one."""
        return f"{self.patient_id}_{self.study_id}" if self.study_id else self.patient_id


@dataclass(frozen=True)
class SequenceCount:
    """Slices of one sequence in the manifest, and how many show a lesion (None: no masks)."""

    slices: int
    lesion_slices: int | None


@dataclass(frozen=True)
class Summary:
    """What `prepare_picai` wrote, and what it left out."""

    manifest: Path
    patients: int
    studies: int
    rows: int
    sequences: dict[Sequence, SequenceCount]
    skipped: dict[str, tuple[str, ...]] = field(default_factory=dict)
    marksheet: Path | None = None
    # Each patient's chosen T2W slices and lesion slices, over all of its studies.
    by_patient: dict[str, SequenceCount] = field(default_factory=dict)
    marksheet_other_studies: int = 0
    disagreements: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "manifest": str(self.manifest),
            "patients": self.patients,
            "studies": self.studies,
            "rows": self.rows,
            "sequences": {
                str(sequence): {"slices": count.slices, "lesion_slices": count.lesion_slices}
                for sequence, count in self.sequences.items()
            },
            "skipped": {name: list(problems) for name, problems in self.skipped.items()},
            "marksheet": None if self.marksheet is None else str(self.marksheet),
            "marksheet_other_studies": self.marksheet_other_studies,
            "disagreements": list(self.disagreements),
            "by_patient": {
                patient: {"slices": count.slices, "lesion_slices": count.lesion_slices}
                for patient, count in self.by_patient.items()
            },
        }

    def text(self) -> str:
        """The summary as the command prints it."""
        studies = _plural(self.studies, "study", "studies")
        lines = [
            f"{_plural(self.patients, 'patient')}, {studies}: {self.rows} rows in {self.manifest}",
            f"{'sequence':<10}{'slices':>8}{'lesion slices':>15}",
        ]
        for sequence, count in self.sequences.items():
            lesions = "-" if count.lesion_slices is None else str(count.lesion_slices)
            lines.append(f"{sequence!s:<10}{count.slices:>8}{lesions:>15}")
        if self.skipped:
            lines.append(
                f"skipped {_plural(len(self.skipped), 'incomplete study', 'incomplete studies')}:"
            )
            lines += [f"  {name}: {'; '.join(why)}" for name, why in self.skipped.items()]
        if self.marksheet is not None and self.marksheet_other_studies:
            rows = _plural(self.marksheet_other_studies, "row")
            lines.append(f"{self.marksheet}: {rows} for studies not among the images, ignored")
        if self.disagreements:
            studies = _plural(len(self.disagreements), "study", "studies")
            lines.append(f"the marksheet and the labels disagree on {studies}:")
            lines += [f"  {text}" for text in self.disagreements]
        return "\n".join(lines)


def prepare_picai(
    images: Iterable[Path],
    labels: Path | None,
    out: Path,
    *,
    dicom: bool = False,
    labels_subdir: str | None = None,
    slices: str | None = None,
    skip_incomplete: bool = False,
    rule: LesionRule | None = None,
    max_pixels: int = MAX_IMAGE_PIXELS,
    progress: Callable[[int, int], None] | None = None,
) -> Summary:
    """Write `out/manifest.csv` for the studies under `images` (PI-CAI, or with `dicom`
    ProstateX-style folders) and their `labels`; PrepareError, with nothing written, when
    something is wrong. `slices` chooses the T2W slices of each study (default: DEFAULT_SLICES);
    `rule` says which slices of a mask show a lesion (default: the importer's, LesionRule());
    `progress(done, total)` follows the reading of the studies."""
    out, roots = Path(out), [Path(root) for root in images]
    slices, rule = slices or DEFAULT_SLICES, rule or LesionRule()
    manifest = out / MANIFEST_NAME
    _check_options(slices, manifest)
    for root in roots:
        if not root.is_dir():
            raise PrepareError(f"{root}: is not a folder; --images names the patients' folder")
    if dicom:
        studies, marksheet = _find_dicom(roots, labels, labels_subdir), None
    else:
        studies, marksheet = _find_picai(roots, labels, labels_subdir)
    listed = _read_marksheet(marksheet) if marksheet else {}
    if marksheet:
        # A patient folder without images has no study to look up.
        studies = [
            _with_missing(study, f"{marksheet}: has no row for study {study.name}")
            if study.study_id and study.name not in listed
            else study
            for study in studies
        ]
    incomplete = [study for study in studies if study.missing]
    if incomplete and not skip_incomplete:
        raise PrepareError(
            "\n".join(f"{problem}; {SKIP_HINT}" for s in incomplete for problem in s.missing)
        )
    complete = [study for study in studies if not study.missing]
    if not complete:
        raise PrepareError(
            f"{', '.join(map(str, roots))}: none of its {len(studies)} studies is complete, "
            "so there is nothing to prepare:\n" + "\n".join(p for s in studies for p in s.missing)
        )

    found = _read_studies(complete, slices, rule, max_pixels, progress)
    rows = [_row(study, sequence, slices, out) for study in complete for sequence in SEQUENCES]
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(manifest, rows)
    chosen = sum(len(read.lesion) for read in found.values())
    lesion_slices = sum(sum(read.lesion) for read in found.values()) if labels else None
    by_patient: dict[str, SequenceCount] = {}
    for study in complete:
        read, before = found[study.name], by_patient.get(study.patient_id, SequenceCount(0, 0))
        by_patient[study.patient_id] = SequenceCount(
            before.slices + len(read.lesion),
            None
            if not labels or before.lesion_slices is None
            else before.lesion_slices + sum(read.lesion),
        )
    return Summary(
        manifest=manifest,
        patients=len({study.patient_id for study in complete}),
        studies=len(complete),
        rows=len(rows),
        # ADC and DWI are resampled onto the T2W's slices: each sequence has the T2W's.
        sequences={sequence: SequenceCount(chosen, lesion_slices) for sequence in SEQUENCES},
        skipped={study.name: study.missing for study in incomplete},
        marksheet=marksheet,
        by_patient=by_patient,
        marksheet_other_studies=len(set(listed) - {study.name for study in studies}),
        disagreements=tuple(
            _disagreement(name, listed[name] is True)
            for name, read in found.items()
            if listed.get(name) is not None and listed[name] != read.labelled
        ),
    )


def _plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else words or word + 's'}"


def _check_options(slices: str, manifest: Path) -> None:
    try:
        validate_slice_spec(slices)
    except ImagingError as e:
        raise PrepareError(f"--slices: {e}") from e
    if manifest.exists():
        raise PrepareError(
            f"{manifest}: already exists; choose another --out (nothing is overwritten)"
        )
    if manifest.parent.exists() and not manifest.parent.is_dir():
        raise PrepareError(f"{manifest.parent}: is not a folder; --out names a folder")


def _with_missing(study: Study, problem: str) -> Study:
    return Study(
        study.patient_id, study.study_id, study.images, study.label, (*study.missing, problem)
    )


def _patient_folders(roots: list[Path], kind: str) -> list[Path]:
    """The patient folders of every root; PrepareError when there is none."""
    # Hidden entries (.DS_Store, .git) are file-system clutter, never a patient.
    folders = [
        path
        for root in roots
        for path in sorted(root.iterdir())
        if path.is_dir() and not path.name.startswith(".")
    ]
    if not folders:
        raise PrepareError(
            f"{', '.join(map(str, roots))}: holds no patient folders ({kind}); --images names "
            "the folder that holds them"
        )
    return folders


# --- PI-CAI -----------------------------------------------------------------------------------


def _find_picai(
    roots: list[Path], labels: Path | None, labels_subdir: str | None
) -> tuple[list[Study], Path | None]:
    """The studies of the PI-CAI layout, and the marksheet when the labels hold one."""
    if labels is None:
        raise PrepareError("--labels is required for PI-CAI: name the picai_labels folder")
    label_dir = labels / LESIONS_DIR / (labels_subdir or DEFAULT_LABELS_SUBDIR)
    if not label_dir.is_dir():
        raise PrepareError(
            f"{label_dir}: does not exist; --labels names the picai_labels folder (holding "
            f"{LESIONS_DIR}/) and --labels-subdir one of its label sets, e.g. "
            f"{DEFAULT_LABELS_SUBDIR} or AI/Bosma22a"
        )
    studies = _picai_studies(roots, label_dir)
    marksheet = labels / MARKSHEET
    return studies, marksheet if marksheet.is_file() else None


def _picai_studies(roots: list[Path], label_dir: Path) -> list[Study]:
    """The studies under `roots`, each with what it lacks."""
    found: dict[tuple[str, str], dict[Sequence, Path]] = {}
    problems, studies = [], []
    for folder in _patient_folders(roots, "<patient_id>/ holding .mha files"):
        named = [(path, match) for path in sorted(folder.iterdir()) if (match := _picai_file(path))]
        if not named:
            problem = f"{folder}: holds no {folder.name}_<study_id>_t2w.mha, _adc.mha or _hbv.mha"
            studies.append(Study(folder.name, "", {}, None, (problem,)))
        for path, (patient, study_id, sequence) in named:
            images = found.setdefault((patient, study_id), {})
            if patient != folder.name:
                problems.append(
                    f"{path}: belongs to patient {patient}, not to the folder's "
                    f"{folder.name}; move it into {folder.parent / patient}"
                )
            elif sequence in images:
                problems.append(
                    f"{path}: the {sequence} of study {patient}_{study_id} is also at "
                    f"{images[sequence]}; keep one"
                )
            else:
                images[sequence] = path
    if problems:
        raise PrepareError("\n".join(problems))
    for (patient, study_id), images in sorted(found.items()):
        name = f"{patient}_{study_id}"
        missing = [
            f"{_picai_image(images, patient, study_id, sequence)}: does not exist, so study "
            f"{name} has no {sequence}"
            for sequence in SEQUENCES
            if sequence not in images
        ]
        label = label_dir / f"{name}{LABEL_SUFFIX}"
        if not label.is_file():
            missing.append(f"{label}: does not exist, so study {name} has no lesion label")
        studies.append(Study(patient, study_id, images, label, tuple(missing)))
    return studies


def _picai_file(path: Path) -> tuple[str, str, Sequence] | None:
    """(patient, study, sequence) of a T2W, ADC or high-b image; None for any other file."""
    match = _PICAI_NAME.fullmatch(path.name)
    if match is None or not path.is_file():
        return None
    patient, study_id, kind = match.groups()
    sequence = PICAI_SUFFIXES.get(kind.lower())
    return None if sequence is None else (patient, study_id, sequence)


def _picai_image(
    images: dict[Sequence, Path], patient: str, study: str, sequence: Sequence
) -> Path:
    """Where the missing `sequence` of a study should be: beside its other images."""
    folder = next(iter(images.values())).parent
    suffix = next(kind for kind, s in PICAI_SUFFIXES.items() if s == sequence)
    return folder / f"{patient}_{study}_{suffix}.mha"


def _read_marksheet(path: Path) -> dict[str, bool | None]:
    """Per `<patient_id>_<study_id>`, whether the marksheet calls the study csPCa (its
    case_csPCa, YES or NO; None where the marksheet has no such column)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise PrepareError(f"{path}: cannot be read ({e.strerror})") from e
    except UnicodeDecodeError as e:
        raise PrepareError(f"{path}: is not UTF-8 text ({e.reason}); save it as CSV UTF-8") from e
    reader = csv.DictReader(io.StringIO(text))
    columns = [column.strip() for column in reader.fieldnames or []]
    absent = [c for c in ("patient_id", "study_id") if c not in columns]
    if absent:
        raise PrepareError(
            f"{path}: line 1: no column {' or '.join(absent)}; a PI-CAI marksheet has "
            "patient_id, study_id, ..., case_csPCa"
        )
    graded = "case_csPCa" in columns
    listed: dict[str, bool | None] = {}
    problems = []
    try:
        for values in reader:
            line = reader.line_num
            # A row longer than the header puts its extra cells under the key None.
            row = {k.strip(): (v or "").strip() for k, v in values.items() if k is not None}
            name = f"{row['patient_id']}_{row['study_id']}"
            cspca = row.get("case_csPCa", "").upper()
            if name in listed:
                problems.append(f"{path}: line {line}: study {name} is listed twice; keep one")
            elif graded and cspca not in ("YES", "NO"):
                problems.append(
                    f"{path}: line {line}: case_csPCa {row['case_csPCa']!r} is neither YES nor NO"
                )
            else:
                listed[name] = cspca == "YES" if graded else None
    except csv.Error as e:
        problems.append(f"{path}: line {reader.line_num}: not valid CSV ({one_line(e)})")
    if problems:
        raise PrepareError("\n".join(problems))
    return listed


def _disagreement(name: str, cspca: bool) -> str:
    if cspca:
        return f"{name}: case_csPCa is YES, but its label holds no lesion"
    return f"{name}: case_csPCa is NO, but its label holds a lesion"


# --- ProstateX-style DICOM folders -------------------------------------------------------------


SERIES_NAMES = {
    Sequence.T2W: "t2w, or t2...tra after its description",
    Sequence.ADC: "adc, or ...adc",
    Sequence.DWI: "hbv, or ...calc_bval",
}


def dicom_sequence(name: str) -> Sequence | None:
    """The sequence a series folder holds, from its name (ProstateX names them by their
    SeriesDescription): None for the series a reader study does not use (sagittal, coronal,
    the raw diffusion series, dynamic contrast).

    >>> [dicom_sequence(n) for n in ("t2w", "4.000000-t2tsetra-00702", "7-ep2ddifftraDYNDISTADC")]
    [<Sequence.T2W: 'T2W'>, <Sequence.T2W: 'T2W'>, <Sequence.ADC: 'ADC'>]
    >>> [dicom_sequence(n) for n in ("hbv", "ep2d_diff_tra_DYNDIST_CALC_BVAL", "t2tsesag")]
    [<Sequence.DWI: 'DWI'>, <Sequence.DWI: 'DWI'>, None]
    """
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    if "adc" in key:
        return Sequence.ADC
    if "hbv" in key or "calcbval" in key or key in ("dwi", "highb"):
        return Sequence.DWI
    if key in ("t2w", "t2") or ("t2" in key and "tra" in key):
        return Sequence.T2W
    return None


def _find_dicom(roots: list[Path], labels: Path | None, labels_subdir: str | None) -> list[Study]:
    """One study per patient folder, with what it lacks."""
    if labels_subdir is not None:
        raise PrepareError(f"--labels-subdir {labels_subdir}: applies to PI-CAI, not --dicom")
    if labels is not None and not labels.is_dir():
        raise PrepareError(f"{labels}: is not a folder of <patient>{LABEL_SUFFIX} label volumes")
    folders = _patient_folders(roots, "<patient>/ holding DICOM series folders")
    seen: dict[str, Path] = {}
    for folder in folders:
        if folder.name in seen:
            raise PrepareError(f"{folder}: patient {folder.name} is also at {seen[folder.name]}")
        seen[folder.name] = folder
    return [_dicom_study(folder, labels) for folder in folders]


def _dicom_study(folder: Path, labels: Path | None) -> Study:
    series: dict[Sequence, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        if (
            path.is_dir()
            and not any(part.startswith(".") for part in path.relative_to(folder).parts)
            and (sequence := dicom_sequence(path.name)) is not None
            and any(f.is_file() for f in path.iterdir())
        ):
            series.setdefault(sequence, []).append(path)
    missing = []
    for sequence in SEQUENCES:
        if sequence not in series:
            missing.append(
                f"{folder}: holds no {sequence} series (a folder named {SERIES_NAMES[sequence]})"
            )
        elif len(series[sequence]) > 1:
            listed = ", ".join(str(p.relative_to(folder)) for p in series[sequence])
            missing.append(f"{folder}: holds {len(series[sequence])} {sequence} series ({listed})")
    images = {sequence: paths[0] for sequence, paths in series.items()}
    parents = {path.parent for path in images.values()}
    if len(parents) > 1:
        listed = ", ".join(sorted(str(p.relative_to(folder)) for p in parents))
        missing.append(f"{folder}: its series lie in several studies ({listed}); keep one")
    study_id = ""
    if len(parents) == 1 and (parent := parents.pop()) != folder:
        study_id = parent.relative_to(folder).as_posix()
    label = None
    if labels is not None:
        label = labels / f"{folder.name}{LABEL_SUFFIX}"
        if not label.is_file():
            missing.append(f"{label}: does not exist, so patient {folder.name} has no label")
    return Study(folder.name, study_id, images, label, tuple(missing))


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Read:
    """Per chosen T2W slice, whether it shows a lesion; whether the label holds any lesion
    voxel at all (None without a label)."""

    lesion: list[bool]
    labelled: bool | None


def _read_studies(
    studies: list[Study],
    slices: str,
    rule: LesionRule,
    max_pixels: int,
    progress: Callable[[int, int], None] | None,
) -> dict[str, _Read]:
    """Read every image and label as the importer will; PrepareError lists what cannot be."""
    found, problems = {}, []
    for done, study in enumerate(studies):
        if progress:
            progress(done, len(studies))
        try:
            found[study.name] = _read_study(study, slices, rule, max_pixels)
        except ImagingError as e:
            problems.append(str(e))
    if progress:
        progress(len(studies), len(studies))
    if problems:
        raise PrepareError("\n".join(problems))
    return found


def _read_study(study: Study, slices: str, rule: LesionRule, max_pixels: int) -> _Read:
    """What the importer does with the study's rows, but storing: the T2W's slices chosen,
    ADC and DWI resampled onto them, the label fitted to them and read per slice."""
    volumes = {
        sequence: load_volume(path, max_pixels=max_pixels)
        for sequence, path in study.images.items()
    }
    t2w = volumes[Sequence.T2W]
    try:
        indices = parse_slice_choice(slices, t2w.array.shape[0])
    except ImagingError as e:
        raise ImagingError(f"{t2w.path}: --slices {e}") from e
    for sequence in sorted(PAIRED_SEQUENCES & volumes.keys()):
        resample_onto(volumes[sequence], t2w, indices)
    if study.label is None:
        return _Read([False] * len(indices), None)
    truths = mask_truth(
        study.label,
        image=t2w.path,
        lesion=Lesion.UNKNOWN,
        grid=t2w.grid,
        indices=indices,
        spacing_mm=t2w.spacing_mm,
        rule=rule,
        max_pixels=max_pixels,
    )
    labelled = bool(read_mask(study.label, max_pixels=max_pixels).array.any())
    return _Read([truth.lesion == Lesion.YES for truth in truths], labelled)


def _row(study: Study, sequence: Sequence, slices: str, out: Path) -> dict[str, object]:
    return {
        "path": _relative(study.images[sequence], out),
        "origin": Origin.REAL,
        "sequence": sequence,
        "lesion": None,
        "patient_id": study.patient_id,
        "study_id": study.study_id or None,
        "slices": slices,
        "mask": None if study.label is None else _relative(study.label, out),
    }


def _relative(path: Path, out: Path) -> Path:
    """`path` relative to the manifest's folder when it lies inside, else absolute: the
    manifest reader accepts no relative path that leaves its folder."""
    resolved, folder = path.resolve(), out.resolve()
    return resolved.relative_to(folder) if resolved.is_relative_to(folder) else resolved
