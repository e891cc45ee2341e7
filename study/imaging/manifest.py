"""Manifests: CSV files listing the images to import, validated in full before any is returned.

Columns (header names are case-insensitive; unknown columns are refused so that a misspelt
optional column cannot be ignored silently):

- required: path, origin, sequence, lesion, patient_id (patient_id may be empty for synthetic
  rows only);
- optional: slice_index, slices, series, pair_key, pirads, intensity, study_id, mask;
- provenance (synthetic rows only): generator, prompt, seed, checkpoint_sha256, sampler, steps,
  guidance, condition_sha256.

`path` is an image file, a volume (NIfTI, MetaImage) or a DICOM folder. Relative paths resolve
against the manifest's folder and may not leave it; absolute paths only with allow_absolute.
For a volume or series `slice_index` takes that one slice (instead of `slices`); for a 2D
picture it records which slice the picture shows. Enumerations are read case-insensitively
(with aliases such as t2, hbv, high-b, yes/no) and stored canonical.

`mask` is a label volume giving each slice of a volume row its lesion truth, or a 2D label
image of the same pixels giving a 2D picture row its truth (mask.py);
`study_id` names the imaging study (the examination) of a real row, for pairing the sequences
of a patient's study (pairing.py: ADC and DWI are shown on the T2W volume's slices, with pair
keys filled in). The real volume rows of one patient are therefore loaded together; every other
row on its own.

Every problem of every row is collected into one ManifestError, one line per problem:
``<manifest>: line <n>: <file>: <problem>``. Given `shown` (an upload unpacked on the server),
messages name the manifest and its files as the user knows them, never the server's folder.
"""

from __future__ import annotations

import csv
import io
import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from study.imaging.canonical import as_canonical, read_canonical
from study.imaging.errors import (
    ImagingError,
    ManifestError,
    ShownPaths,
    file_problems,
    one_line,
)
from study.imaging.geometry import Plane
from study.imaging.lesions import DEFAULT_MIN_LESION_VOXELS, LesionOutline, LesionRule
from study.imaging.load import (
    MAX_IMAGE_PIXELS,
    Volume,
    is_picture,
    load_slices,
    load_volume,
    parse_slice_choice,
    slice_sha256,
    validate_slice_spec,
)
from study.imaging.mask import mask_truth, picture_mask_truth
from study.imaging.normalise import normalise
from study.imaging.pairing import (
    PAIRED_SEQUENCES,
    pair_key,
    resample_onto,
    resampled_sha256,
    study_of,
)
from study.imaging.types import (
    Intensity,
    Lesion,
    Origin,
    Sequence,
    parse_intensity,
    parse_lesion,
    parse_origin,
    parse_sequence,
)

REQUIRED_COLUMNS = ("path", "origin", "sequence", "lesion", "patient_id")
OPTIONAL_COLUMNS = (
    "slice_index",
    "slices",
    "series",
    "pair_key",
    "pirads",
    "intensity",
    "study_id",
    "mask",
)
PROVENANCE_COLUMNS = (
    "generator",
    "prompt",
    "seed",
    "checkpoint_sha256",
    "sampler",
    "steps",
    "guidance",
    "condition_sha256",
)
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS + PROVENANCE_COLUMNS
DEFAULT_SLICES = "central:10"
# The database keeps slice indices as 32-bit integers.
MAX_SLICE_INDEX = 2**31 - 1

_SHA256 = re.compile(r"[0-9a-f]{64}")
_T = TypeVar("_T")


@dataclass(frozen=True)
class ManifestRow:
    """One validated manifest row; `path` is resolved, enumerations are canonical."""

    line: int
    path: Path
    origin: Origin
    sequence: Sequence
    lesion: Lesion
    patient_id: str
    slices: str
    series: str | None
    slice_index: int | None
    pair_key: str
    pirads: int | None
    intensity: Intensity
    provenance: dict[str, str]
    study_id: str = ""
    mask: Path | None = None
    # Whether the row chose its slices itself (`slices` holds the default otherwise).
    slices_given: bool = False


@dataclass(frozen=True)
class ManifestSlice:
    """One 2D canonical image of a manifest row, ready to store.

    `lesion` and `pair_key` are the slice's own: from the row, or from its mask and pairing.
    `plane` says where the canonical pixels lie in the patient (None for pictures and volumes
    that do not say); `mask` holds the slice's labels on those pixels and `lesions` its lesions,
    both None without a mask.
    """

    row: ManifestRow
    slice_index: int
    source_sha256: str
    canonical: np.ndarray
    spacing_mm: tuple[float, float]
    shape: tuple[int, int]
    lesion: Lesion
    pair_key: str
    plane: Plane | None = None
    mask: np.ndarray | None = None
    lesions: tuple[LesionOutline, ...] | None = None


@dataclass(frozen=True)
class _Problem:
    """A problem on `line`; `text` starts with the line, the manifest is named when raised."""

    line: int
    text: str


def read_manifest(
    path: Path, *, allow_absolute: bool = True, shown: ShownPaths | None = None
) -> list[ManifestRow]:
    """Every row of the manifest at `path`, validated; ManifestError lists all problems."""
    rows, problems = _parse_manifest(path, allow_absolute, shown)
    _raise_if_any(path, problems, shown)
    return rows


def load_manifest(
    path: Path,
    *,
    allow_absolute: bool = True,
    progress: Callable[[int, int], None] | None = None,
    max_pixels: int = MAX_IMAGE_PIXELS,
    shown: ShownPaths | None = None,
    min_lesion_voxels: int = DEFAULT_MIN_LESION_VOXELS,
    lesion_labels: Iterable[int] | None = None,
) -> list[ManifestSlice]:
    """Every 2D slice of every row, canonical (normalised unless intensity=canonical).

    All rows are read and loaded before anything is returned; the problems of all of them are
    raised together. `progress(done_rows, total_rows)` follows the loading. `max_pixels` bounds
    each row's file or series (the app passes VTT_MAX_IMAGE_PIXELS). A slice with a mask is a
    lesion when it holds at least `min_lesion_voxels` voxels of `lesion_labels` (None: of any
    label > 0).
    """
    rule = LesionRule(
        min_lesion_voxels, frozenset(lesion_labels) if lesion_labels is not None else None
    )
    rows, problems = _parse_manifest(path, allow_absolute, shown)
    loaded: dict[int, list[ManifestSlice]] = {}
    if progress:
        progress(0, len(rows))
    done = 0
    for unit in _units(rows):
        slices, unit_problems = _load_unit(unit, rule, max_pixels)
        loaded.update(slices)
        problems.extend(unit_problems)
        done += len(unit)
        if progress:
            progress(done, len(rows))
    _raise_if_any(path, problems, shown)
    return [item for row in rows for item in loaded[row.line]]


def write_manifest(path: Path, rows: Iterable[Mapping[str, object]]) -> Path:
    """Write `rows` as the manifest at `path` and return `path`; the one writer of manifests.

    The header is the required columns, then the optional and provenance columns that any row
    fills, all in the order of `COLUMNS`. Keys must be column names as `COLUMNS` spells them; a
    row with any other key is refused (ManifestError naming it) before anything is written, as
    the reader would refuse the column. None (and a missing key) is written empty, a bool as
    1/0, a Path in POSIX form, enumerations as their canonical value. Rows are written as given:
    whether each is a valid image row is for the reader to say.
    """
    records = [_manifest_record(number, row) for number, row in enumerate(rows, start=1)]
    if not records:
        raise ManifestError(f"{path}: no rows to write; a manifest lists at least one image")
    filled = {column for record in records for column, value in record.items() if value}
    header = [c for c in COLUMNS if c in REQUIRED_COLUMNS or c in filled]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows({c: v for c, v in record.items() if c in header} for record in records)
    return path


def _manifest_record(number: int, row: Mapping[str, object]) -> dict[str, str]:
    """Row `number` (1-based) as the text of each of its cells."""
    unknown = [column for column in row if column not in COLUMNS]
    if unknown:
        raise ManifestError(
            f"row {number}: unknown column {unknown[0]!r}; known columns are {', '.join(COLUMNS)}"
        )
    return {column: _cell_text(number, column, value) for column, value in row.items()}


def _cell_text(number: int, column: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        # A StrEnum is a str whose text is its canonical value.
        return str(value)
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, numbers.Real):
        # numbers.Real covers numpy's scalars too; repr of a float reads back exactly.
        return repr(float(value)) if not isinstance(value, numbers.Integral) else str(int(value))
    raise ManifestError(
        f"row {number}: column {column!r} holds a {type(value).__name__}; "
        "give text, a number, a bool, a Path or None"
    )


def _raise_if_any(path: Path, problems: list[_Problem], shown: ShownPaths | None) -> None:
    if problems:
        ordered = sorted(problems, key=lambda p: p.line)
        raise ManifestError(file_problems(path, (p.text for p in ordered), shown))


def _pairable(row: ManifestRow) -> bool:
    """Whether the row takes part in pairing its patient's sequences (pairing.py)."""
    return row.origin == Origin.REAL and not row.pair_key and not is_picture(row.path)


def _units(rows: list[ManifestRow]) -> list[list[ManifestRow]]:
    """Rows loaded together: the pairable rows of each patient, every other row alone."""
    units: list[list[ManifestRow]] = []
    by_patient: dict[str, list[ManifestRow]] = {}
    for row in rows:
        if not _pairable(row):
            units.append([row])
        elif row.patient_id in by_patient:
            by_patient[row.patient_id].append(row)
        else:
            by_patient[row.patient_id] = [row]
            units.append(by_patient[row.patient_id])
    return units


def _load_unit(
    unit: list[ManifestRow], rule: LesionRule, max_pixels: int
) -> tuple[dict[int, list[ManifestSlice]], list[_Problem]]:
    """The slices of each row of `unit` (by line), and the problems of the others."""
    loaded: dict[int, list[ManifestSlice]] = {}
    problems: list[_Problem] = []

    def fail(row: ManifestRow, error: ImagingError | str) -> None:
        problems.append(_Problem(row.line, f"line {row.line}: {error}"))

    if not _pairable(unit[0]):
        (row,) = unit
        try:
            if is_picture(row.path):
                loaded[row.line] = _picture_slices(row, rule, max_pixels)
            else:
                volume = load_volume(row.path, series=row.series, max_pixels=max_pixels)
                loaded[row.line] = _volume_slices(row, volume, rule, max_pixels)
        except ImagingError as e:
            fail(row, e)
        return loaded, problems

    volumes: dict[int, Volume] = {}
    for row in unit:
        try:
            volumes[row.line] = load_volume(row.path, series=row.series, max_pixels=max_pixels)
        except ImagingError as e:
            fail(row, e)
    studies: dict[str, list[ManifestRow]] = {}
    for row in unit:
        if row.line in volumes:
            studies.setdefault(study_of(row.study_id, volumes[row.line]), []).append(row)
    for study, members in studies.items():
        t2w = [row for row in members if row.sequence == Sequence.T2W]
        for extra in t2w[1:]:
            where = f" in study {study}" if study else ""
            fail(
                extra,
                f"{extra.path}: a second T2W volume of patient {extra.patient_id}{where} beside "
                f"line {t2w[0].line}; give the rows a study_id each to say which sequences "
                "belong together, or pair them by hand with pair_key",
            )
        if len(t2w) > 1:
            continue
        reference = t2w[0] if t2w else None
        # The T2W row first: the others are shown on its slices, or refused with it.
        for row in sorted(members, key=lambda r: r is not reference):
            paired = reference is not None and row.sequence in PAIRED_SEQUENCES
            if paired and reference is not None and reference.line not in loaded:
                continue
            try:
                loaded[row.line] = _volume_slices(
                    row,
                    volumes[row.line],
                    rule,
                    max_pixels,
                    shown_on=(reference, volumes[reference.line]) if paired else None,
                    study=study if paired or row is reference else None,
                )
            except ImagingError as e:
                fail(row, e)
    return loaded, problems


def _picture_slices(row: ManifestRow, rule: LesionRule, max_pixels: int) -> list[ManifestSlice]:
    (source,) = load_slices(row.path, slices=row.slices, series=row.series, max_pixels=max_pixels)
    if row.intensity == Intensity.RAW:
        canonical = normalise(source.array, row.sequence)
    else:
        canonical = read_canonical(row.path, max_pixels=max_pixels)
    truth = (
        picture_mask_truth(
            row.mask,
            image=row.path,
            lesion=row.lesion,
            shape=(int(canonical.shape[0]), int(canonical.shape[1])),
            spacing_mm=source.spacing_mm,
            rule=rule,
            max_pixels=max_pixels,
        )
        if row.mask
        else None
    )
    return [
        ManifestSlice(
            row=row,
            slice_index=row.slice_index if row.slice_index is not None else source.slice_index,
            source_sha256=source.source_sha256,
            canonical=canonical,
            spacing_mm=source.spacing_mm,
            shape=(int(canonical.shape[0]), int(canonical.shape[1])),
            lesion=truth.lesion if truth else row.lesion,
            pair_key=row.pair_key,
            mask=truth.labels if truth else None,
            lesions=truth.lesions if truth else None,
        )
    ]


def _slice_spec(row: ManifestRow) -> str:
    if row.slice_index is not None:
        return f"{row.slice_index}:{row.slice_index + 1}"
    return row.slices


def _slice_choice(row: ManifestRow) -> str:
    """The row's choice of slices in words."""
    if row.slice_index is not None:
        return f"slice_index {row.slice_index}"
    return f"slices {row.slices!r}" + ("" if row.slices_given else " (the default)")


def _volume_slices(
    row: ManifestRow,
    volume: Volume,
    rule: LesionRule,
    max_pixels: int,
    *,
    shown_on: tuple[ManifestRow, Volume] | None = None,
    study: str | None = None,
) -> list[ManifestSlice]:
    """The row's slices: of its own volume, or resampled onto the slices of the T2W row and
    volume `shown_on`; with pair keys of `study` unless it is None."""
    chooser, target = shown_on or (row, volume)
    chooses = row.slices_given or row.slice_index is not None
    if shown_on and chooses and _slice_spec(row) != _slice_spec(chooser):
        raise ImagingError(
            f"{row.path}: {_slice_choice(row)} differs from the T2W row's (line "
            f"{chooser.line}: {_slice_choice(chooser)}), on whose slices it is shown; leave "
            "it empty or give the same"
        )
    try:
        indices = parse_slice_choice(_slice_spec(chooser), target.array.shape[0])
    except ImagingError as e:
        raise ImagingError(f"{chooser.path}: {e}") from e
    if shown_on:
        arrays = resample_onto(volume, target, indices)
        shas = [resampled_sha256(volume.digest, target.digest, i) for i in indices]
    else:
        arrays = volume.array[indices[0] : indices[-1] + 1]
        shas = [slice_sha256(volume.digest, i) for i in indices]
    truths = (
        mask_truth(
            row.mask,
            image=row.path,
            lesion=row.lesion,
            grid=target.grid,
            indices=indices,
            spacing_mm=target.spacing_mm,
            rule=rule,
            max_pixels=max_pixels,
        )
        if row.mask
        else None
    )
    out = []
    for j, index in enumerate(indices):
        if row.intensity == Intensity.RAW:
            canonical = normalise(arrays[j], row.sequence)
        else:
            canonical = as_canonical(arrays[j], f"{row.path} slice {index}")
        truth = truths[j] if truths else None
        out.append(
            ManifestSlice(
                row=row,
                slice_index=index,
                source_sha256=shas[j],
                canonical=canonical,
                spacing_mm=target.spacing_mm,
                shape=(int(canonical.shape[0]), int(canonical.shape[1])),
                lesion=truth.lesion if truth else row.lesion,
                pair_key=pair_key(row.patient_id, study, index)
                if study is not None
                else row.pair_key,
                plane=target.grid.plane(index) if target.grid else None,
                mask=truth.labels if truth else None,
                lesions=truth.lesions if truth else None,
            )
        )
    return out


def _parse_manifest(
    path: Path, allow_absolute: bool, shown: ShownPaths | None
) -> tuple[list[ManifestRow], list[_Problem]]:
    """The valid rows and the problems of all others (and of the header)."""
    text = _read_text(path, shown)
    records = csv.reader(io.StringIO(text))
    try:
        header = next(records, None)
    except csv.Error as e:
        problem = f"line 1: the header is not valid CSV ({one_line(e)})"
        raise ManifestError(file_problems(path, [problem], shown)) from e
    if header is None or not any(cell.strip() for cell in header):
        problem = (
            f"line 1: the manifest is empty; write a header ({', '.join(REQUIRED_COLUMNS)}) "
            "and one row per image"
        )
        raise ManifestError(file_problems(path, [problem], shown))
    columns = [cell.strip().lower() for cell in header]
    problems = _header_problems(columns)
    if problems:
        return [], problems
    rows: list[ManifestRow] = []
    path_column = columns.index("path")
    seen_rows = 0
    try:
        for cells in records:
            line = records.line_num
            if not any(cell.strip() for cell in cells):
                continue
            seen_rows += 1
            if len(cells) != len(columns):
                file = cells[path_column].strip() if path_column < len(cells) else ""
                problems.append(
                    _Problem(
                        line,
                        f"line {line}: {file or '(no path)'}: has {len(cells)} fields, "
                        f"the header has {len(columns)}; quote fields that contain commas",
                    )
                )
                continue
            values = {c: v.strip() for c, v in zip(columns, cells, strict=True)}
            row, row_problems = _parse_row(path, line, values, allow_absolute)
            problems.extend(row_problems)
            if row is not None:
                rows.append(row)
    except csv.Error as e:
        problems.append(
            _Problem(records.line_num, f"line {records.line_num}: not valid CSV ({one_line(e)})")
        )
    if seen_rows == 0 and not problems:
        problems.append(
            _Problem(1, "line 1: the manifest has a header but no rows; add one per image")
        )
    return rows, problems


def _read_text(path: Path, shown: ShownPaths | None) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        problem = "the manifest does not exist; check the path"
        raise ManifestError(file_problems(path, [problem], shown)) from e
    except OSError as e:
        problem = f"the manifest cannot be read ({e.strerror})"
        raise ManifestError(file_problems(path, [problem], shown)) from e
    try:
        # utf-8-sig: spreadsheet programs put a byte-order mark before the header.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        problem = (
            f"the manifest is not UTF-8 text ({e.reason} at byte {e.start}); save it as CSV UTF-8"
        )
        raise ManifestError(file_problems(path, [problem], shown)) from e


def _header_problems(columns: list[str]) -> list[_Problem]:
    problems = []
    for column in REQUIRED_COLUMNS:
        if column not in columns:
            problems.append(
                _Problem(
                    1,
                    f"line 1: missing required column {column!r}; the header needs "
                    f"{', '.join(REQUIRED_COLUMNS)}",
                )
            )
    for column in sorted({c for c in columns if columns.count(c) > 1}):
        problems.append(_Problem(1, f"line 1: column {column!r} appears more than once"))
    for number, column in enumerate(columns, start=1):
        if not column:
            problems.append(
                _Problem(
                    1,
                    f"line 1: column {number} has no name; name it or remove it "
                    "(a trailing comma makes an empty column)",
                )
            )
        elif column not in COLUMNS:
            problems.append(
                _Problem(
                    1,
                    f"line 1: unknown column {column!r}; known columns are {', '.join(COLUMNS)}",
                )
            )
    return problems


def _resolve(manifest: Path, text: str, allow_absolute: bool) -> Path:
    """The file a row names; ValueError says why it may not be used."""
    if not text:
        raise ValueError("path is empty; name an image file, volume or DICOM folder")
    folder = manifest.resolve().parent
    given = Path(text)
    if given.is_absolute():
        if not allow_absolute:
            raise ValueError(
                "absolute paths are not allowed in this manifest; use a path relative to "
                f"the manifest folder {folder}"
            )
        resolved = given.resolve()
    else:
        resolved = (folder / given).resolve()
        if not resolved.is_relative_to(folder):
            raise ValueError(
                f"path leaves the manifest folder {folder}; put the file inside that folder"
            )
    try:
        exists = resolved.exists()
    except OSError as e:  # e.g. a name too long for the file system
        raise ValueError(f"cannot be used as a path ({e.strerror}); check the path") from None
    if not exists:
        raise ValueError(f"does not exist ({resolved}); check the path")
    return resolved


def _parse_int(text: str, what: str, low: int, high: int | None = None) -> int | None:
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a whole number") from None
    if value < low or (high is not None and value > high):
        bounds = f"{low} to {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{what} {value} is out of range: use {bounds}")
    return value


def _parse_slice_index(text: str) -> int | None:
    value = _parse_int(text, "slice_index", 0)
    if value is not None and value > MAX_SLICE_INDEX:
        raise ValueError(f"slice_index {value} is too large: use at most {MAX_SLICE_INDEX}")
    return value


def _parse_provenance(values: dict[str, str]) -> dict[str, str]:
    provenance = {c: values[c] for c in PROVENANCE_COLUMNS if values.get(c)}
    for column in ("seed", "steps"):
        if column in provenance:
            _parse_int(provenance[column], column, 0 if column == "seed" else 1)
    if "guidance" in provenance:
        try:
            float(provenance["guidance"])
        except ValueError:
            raise ValueError(f"guidance {provenance['guidance']!r} is not a number") from None
    for column in ("checkpoint_sha256", "condition_sha256"):
        if column in provenance:
            provenance[column] = provenance[column].lower()
            if not _SHA256.fullmatch(provenance[column]):
                raise ValueError(f"{column} {values[column]!r} is not a 64-digit hex sha256")
    return provenance


def _attempt(problems: list[str], prefix: str, parse: Callable[[], _T]) -> _T | None:
    """`parse()`, or None with its error added to `problems`."""
    try:
        return parse()
    except (ValueError, ImagingError) as e:
        problems.append(f"{prefix}{e}")
        return None


def _parse_row(
    manifest: Path, line: int, values: dict[str, str], allow_absolute: bool
) -> tuple[ManifestRow | None, list[_Problem]]:
    prefix = f"line {line}: {values['path'] or '(no path)'}: "
    problems: list[str] = []
    path = _attempt(problems, prefix, lambda: _resolve(manifest, values["path"], allow_absolute))
    origin = _attempt(problems, prefix, lambda: parse_origin(values["origin"]))
    sequence = _attempt(problems, prefix, lambda: parse_sequence(values["sequence"]))
    lesion = _attempt(problems, prefix, lambda: parse_lesion(values["lesion"]))
    intensity = _attempt(problems, prefix, lambda: parse_intensity(values.get("intensity", "")))
    slices = _attempt(
        problems, prefix, lambda: validate_slice_spec(values.get("slices") or DEFAULT_SLICES)
    )
    slice_index = _attempt(
        problems, prefix, lambda: _parse_slice_index(values.get("slice_index", ""))
    )
    pirads = _attempt(
        problems, prefix, lambda: _parse_int(values.get("pirads", ""), "pirads", 1, 5)
    )
    provenance = _attempt(problems, prefix, lambda: _parse_provenance(values))
    mask_text = values.get("mask", "")
    mask = None
    if mask_text:
        mask = _attempt(
            problems,
            f"line {line}: {mask_text}: mask ",
            lambda: _resolve(manifest, mask_text, allow_absolute),
        )
    patient_id = values["patient_id"]
    if origin == Origin.REAL and not patient_id:
        problems.append(f"{prefix}patient_id is empty; it is required for real images")
    if origin == Origin.REAL and provenance:
        problems.append(
            f"{prefix}provenance columns ({', '.join(provenance)}) are for synthetic images only"
        )
    if values.get("slices") and slice_index is not None:
        problems.append(f"{prefix}set either slices or slice_index, not both")
    if problems:
        return None, [_Problem(line, text) for text in problems]
    assert path and origin and sequence and lesion is not None and intensity and slices
    row = ManifestRow(
        line=line,
        path=path,
        origin=origin,
        sequence=sequence,
        lesion=lesion,
        patient_id=patient_id,
        slices=slices,
        series=values.get("series") or None,
        slice_index=slice_index,
        pair_key=values.get("pair_key", ""),
        pirads=pirads,
        intensity=intensity,
        provenance=provenance or {},
        study_id=values.get("study_id", ""),
        mask=mask,
        slices_given=bool(values.get("slices")),
    )
    return row, []
