"""Closed sets of the domain, shared by imaging, the database and the generator."""

from enum import StrEnum
from typing import TypeVar


class Origin(StrEnum):
    REAL = "real"
    SYNTHETIC = "synthetic"


class Sequence(StrEnum):
    T2W = "T2W"
    ADC = "ADC"
    DWI = "DWI"
    OTHER = "other"


class Lesion(StrEnum):
    """Lesion truth of an image; stored canonical as '1', '0' or '' (unknown)."""

    YES = "1"
    NO = "0"
    UNKNOWN = ""


class Intensity(StrEnum):
    RAW = "raw"
    CANONICAL = "canonical"


# Spellings accepted on input (compared lower-case, surrounding spaces ignored); output is always
# the canonical enum value.
_ORIGINS = {"real": Origin.REAL, "synthetic": Origin.SYNTHETIC}
_SEQUENCES = {
    "t2w": Sequence.T2W,
    "t2": Sequence.T2W,
    "t2-w": Sequence.T2W,
    "t2-weighted": Sequence.T2W,
    "adc": Sequence.ADC,
    "dwi": Sequence.DWI,
    "dw": Sequence.DWI,
    "hbv": Sequence.DWI,
    "high-b": Sequence.DWI,
    "highb": Sequence.DWI,
    "other": Sequence.OTHER,
}
_LESIONS = {
    "1": Lesion.YES,
    "yes": Lesion.YES,
    "true": Lesion.YES,
    "0": Lesion.NO,
    "no": Lesion.NO,
    "false": Lesion.NO,
    "": Lesion.UNKNOWN,
    "unknown": Lesion.UNKNOWN,
}
_INTENSITIES = {"raw": Intensity.RAW, "canonical": Intensity.CANONICAL}


_E = TypeVar("_E", bound=StrEnum)


def _parse(text: str, table: dict[str, _E], what: str) -> _E:
    try:
        return table[text.strip().lower()]
    except KeyError:
        accepted = ", ".join(repr(k) for k in table)
        raise ValueError(f"unknown {what} {text!r}; use one of {accepted}") from None


def parse_origin(text: str) -> Origin:
    """'Real', ' SYNTHETIC ' -> Origin; ValueError naming the accepted spellings otherwise."""
    return _parse(text, _ORIGINS, "origin")


def parse_sequence(text: str) -> Sequence:
    """'t2', 'T2W', 'hbv', 'high-b', ... -> Sequence; ValueError otherwise."""
    return _parse(text, _SEQUENCES, "sequence")


def parse_lesion(text: str) -> Lesion:
    """'1'/'yes'/'true' -> YES, '0'/'no'/'false' -> NO, ''/'unknown' -> UNKNOWN."""
    return _parse(text, _LESIONS, "lesion")


def parse_intensity(text: str) -> Intensity:
    """'' (the default) or 'raw' -> RAW, 'canonical' -> CANONICAL."""
    return _parse(text, _INTENSITIES, "intensity") if text.strip() else Intensity.RAW
