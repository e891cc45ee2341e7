"""Closed sets of the domain, shared by imaging, the database and the generator."""

from enum import StrEnum


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
