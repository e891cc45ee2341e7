"""The package's public names, and the promise that importing its light parts stays light."""

from __future__ import annotations

import subprocess
import sys

import study.imaging
import study.imaging.manifest  # imports the module study.imaging.normalise
from study.imaging import normalise


def test_every_public_name_resolves() -> None:
    for name in study.imaging.__all__:
        assert getattr(study.imaging, name) is not None, name
    assert set(study.imaging.__all__) <= set(dir(study.imaging))


def test_normalise_is_the_function_not_its_module() -> None:
    assert callable(normalise)
    assert study.imaging.normalise is normalise


def test_types_and_errors_import_without_the_readers() -> None:
    code = (
        "import sys, study.imaging.types, study.imaging.errors; "
        "print(sorted(m for m in ('nibabel', 'pydicom', 'SimpleITK', 'PIL') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
