"""Imaging for VTT Studio: load, normalise, render and list images; knows nothing of the database.

The generator (`synth`) uses this package too, so that it learns images exactly as readers see
them. Data flow: `load_slices` or `load_volume` (physical values) -> `normalise` (canonical,
float32 in [0, 1]) -> `canonical_to_bytes` (storage) and `render_png` (the display PNG readers
see). A manifest (`load_manifest`) adds truth from lesion masks (`mask`) and shows ADC and DWI on
their patient's T2W slices (`pairing`), resampled in patient space (`geometry`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from study.imaging.errors import ImagingError, ManifestError, VTTError

# Bound here, eagerly: the function shares its module's name, and binding it now keeps
# `study.imaging.normalise` the function whatever submodules are imported later.
from study.imaging.normalise import NORMALISATION_RULES, normalise
from study.imaging.types import Intensity, Lesion, Origin, Sequence

if TYPE_CHECKING:
    from study.imaging.canonical import (
        as_canonical,
        canonical_from_bytes,
        canonical_to_bytes,
        read_canonical,
        write_canonical_png,
    )
    from study.imaging.lesions import LesionRule, parse_lesion_labels
    from study.imaging.load import (
        SourceSlice,
        Volume,
        load_slices,
        load_volume,
        parse_slice_choice,
        read_picture,
        validate_slice_spec,
    )
    from study.imaging.manifest import (
        ManifestRow,
        ManifestSlice,
        load_manifest,
        read_manifest,
        write_manifest,
    )
    from study.imaging.render import fit_square, render_png, sha256_bytes, strip_png_metadata

# The readers pull in pydicom, nibabel, SimpleITK and Pillow (about 0.4 s); they load on first
# use so that importing `study.imaging.types` or `.errors`, as every command does, stays fast.
_LAZY = {
    **dict.fromkeys(
        [
            "as_canonical",
            "canonical_from_bytes",
            "canonical_to_bytes",
            "read_canonical",
            "write_canonical_png",
        ],
        "study.imaging.canonical",
    ),
    **dict.fromkeys(["LesionRule", "parse_lesion_labels"], "study.imaging.lesions"),
    **dict.fromkeys(
        [
            "SourceSlice",
            "Volume",
            "load_slices",
            "load_volume",
            "load_volume",
            "parse_slice_choice",
            "read_picture",
            "validate_slice_spec",
        ],
        "study.imaging.load",
    ),
    **dict.fromkeys(
        ["ManifestRow", "ManifestSlice", "load_manifest", "read_manifest", "write_manifest"],
        "study.imaging.manifest",
    ),
    **dict.fromkeys(
        ["fit_square", "render_png", "sha256_bytes", "strip_png_metadata"],
        "study.imaging.render",
    ),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "NORMALISATION_RULES",
    "ImagingError",
    "Intensity",
    "Lesion",
    "LesionRule",
    "ManifestError",
    "ManifestRow",
    "ManifestSlice",
    "Origin",
    "Sequence",
    "SourceSlice",
    "VTTError",
    "Volume",
    "as_canonical",
    "canonical_from_bytes",
    "canonical_to_bytes",
    "fit_square",
    "load_manifest",
    "load_slices",
    "load_volume",
    "normalise",
    "parse_lesion_labels",
    "parse_slice_choice",
    "read_canonical",
    "read_manifest",
    "read_picture",
    "render_png",
    "sha256_bytes",
    "strip_png_metadata",
    "validate_slice_spec",
    "write_canonical_png",
    "write_manifest",
]
