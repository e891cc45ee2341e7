"""The formats `python -m study export` writes: a light module, so that the command line can
name them without loading the analysis libraries."""

from __future__ import annotations

FORMATS: tuple[str, ...] = ("csv", "xlsx", "parquet", "imrmc", "mrmc", "html")
DEFAULT_FORMATS: tuple[str, ...] = ("csv", "xlsx", "parquet", "imrmc", "mrmc")
