"""Pairing: ADC and DWI of a patient's study are shown on the T2W volume's slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from study.imaging import ManifestError, load_manifest
from study.imaging.geometry import Grid, coverage, resample
from study.imaging.manifest import write_manifest
from study.imaging.pairing import MAX_PAIR_KEY, pair_key, resampled_sha256
from study.imaging.types import Lesion, Sequence

from .conftest import CUBE_T2W, physical_points, write_mha


def row(path: Path, sequence: str, **more: object) -> dict[str, object]:
    return {
        "path": path.name,
        "origin": "real",
        "sequence": sequence,
        "lesion": "",
        "patient_id": "P1",
        **more,
    }


def test_an_adc_cube_on_another_grid_lands_where_the_t2w_slices_show_it(cube_patient, tmp_path):
    manifest = write_manifest(
        tmp_path / "manifest.csv",
        [
            row(cube_patient["adc"], "ADC"),
            row(cube_patient["t2w"], "T2W", slices="all"),
        ],
    )
    loaded = load_manifest(manifest)
    t2w = [s for s in loaded if s.row.sequence == Sequence.T2W]
    adc = [s for s in loaded if s.row.sequence == Sequence.ADC]
    assert [s.slice_index for s in adc] == [s.slice_index for s in t2w] == list(range(10))
    points = physical_points(CUBE_T2W["shape"], CUBE_T2W["origin"], CUBE_T2W["spacing"])
    # Linear interpolation reaches one ADC voxel (2 mm in-plane, its diagonal 2.8 mm turned by
    # 15 degrees, 4 mm between slices) across the cube's faces; beyond that it is exact.
    margin = np.array([3.0, 3.0, 4.0])
    inside = _within(points, 6.0 - margin)
    outside = ~_within(points, 6.0 + margin)
    assert inside.sum() > 100 and outside.sum() > 1000
    for t2w_slice, adc_slice in zip(t2w, adc, strict=True):
        k = adc_slice.slice_index
        assert adc_slice.shape == t2w_slice.shape == (64, 64)
        assert adc_slice.spacing_mm == t2w_slice.spacing_mm == (0.5, 0.5)
        assert adc_slice.plane == t2w_slice.plane
        assert adc_slice.pair_key == t2w_slice.pair_key == f"P1//{k}"
        # ADC 1500 on the fixed 0..3000 window is 0.5.
        np.testing.assert_allclose(adc_slice.canonical[inside[k]], 0.5, atol=1e-5)
        assert (adc_slice.canonical[outside[k]] == 0).all()
    assert any(inside[k].any() for k in range(10)) and not inside[0].any()
    # The T2W keeps its own pixels.
    assert t2w[0].canonical.shape == (64, 64) and t2w[0].plane is not None
    assert np.allclose(t2w[0].plane.origin, CUBE_T2W["origin"])


def _within(points: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Points inside the box |x| <= half_x, |y - 1| <= half_y, |z| <= half_z."""
    centred = np.abs(points - np.array([0.0, 1.0, 0.0]))
    return (centred <= half).all(axis=-1)


def test_a_resampled_slice_has_an_identity_of_its_own(cube_patient, tmp_path):
    alone = write_manifest(tmp_path / "alone.csv", [row(cube_patient["adc"], "ADC")])
    paired = write_manifest(
        tmp_path / "paired.csv",
        [row(cube_patient["t2w"], "T2W"), row(cube_patient["adc"], "ADC")],
    )
    own = {s.source_sha256 for s in load_manifest(alone)}
    shown = {s.source_sha256 for s in load_manifest(paired) if s.row.sequence == Sequence.ADC}
    assert len(own) == 9 and len(shown) == 10 and not own & shown
    assert resampled_sha256("a", "b", 1) != resampled_sha256("a", "b", 2)


def test_adc_without_a_t2w_of_its_patient_and_study_keeps_its_own_grid(cube_patient, tmp_path):
    manifest = write_manifest(
        tmp_path / "manifest.csv",
        [
            row(cube_patient["t2w"], "T2W", study_id="2019"),
            row(cube_patient["adc"], "ADC", study_id="2021"),
            row(cube_patient["adc"], "DWI", patient_id="P2", slices="0:2"),
        ],
    )
    loaded = load_manifest(manifest)
    adc = [s for s in loaded if s.row.sequence == Sequence.ADC]
    dwi = [s for s in loaded if s.row.sequence == Sequence.DWI]
    assert {s.shape for s in adc + dwi} == {(22, 22)}
    assert {s.pair_key for s in adc + dwi} == {""}
    assert [s.slice_index for s in dwi] == [0, 1]
    t2w = [s for s in loaded if s.row.sequence == Sequence.T2W]
    assert [s.pair_key for s in t2w] == [f"P1/2019/{k}" for k in range(10)]


def test_rows_with_a_pair_key_of_their_own_are_not_paired_again(cube_patient, tmp_path):
    manifest = write_manifest(
        tmp_path / "manifest.csv",
        [
            row(cube_patient["t2w"], "T2W", pair_key="mine"),
            row(cube_patient["adc"], "ADC", pair_key="mine"),
        ],
    )
    loaded = load_manifest(manifest)
    assert {s.pair_key for s in loaded} == {"mine"}
    assert {s.shape for s in loaded if s.row.sequence == Sequence.ADC} == {(22, 22)}


def test_the_t2w_row_chooses_the_slices_and_others_may_only_repeat_it(cube_patient, tmp_path):
    same = write_manifest(
        tmp_path / "same.csv",
        [
            row(cube_patient["t2w"], "T2W", slices="3:5"),
            row(cube_patient["adc"], "ADC", slices="3:5"),
            row(cube_patient["adc"], "DWI"),
        ],
    )
    assert [s.slice_index for s in load_manifest(same)] == [3, 4] * 3
    other = write_manifest(
        tmp_path / "other.csv",
        [
            row(cube_patient["t2w"], "T2W", slice_index=4),
            row(cube_patient["adc"], "ADC", slices="0:2"),
        ],
    )
    with pytest.raises(ManifestError) as error:
        load_manifest(other)
    assert error.value.problems == [
        f"{other}: line 3: {cube_patient['adc']}: slices '0:2' differs from the T2W row's "
        "(line 2: slice_index 4), on whose slices it is shown; leave it empty or give the same"
    ]


def test_two_t2w_volumes_of_one_patient_and_study_are_refused(cube_patient, tmp_path):
    manifest = write_manifest(
        tmp_path / "manifest.csv",
        [
            row(cube_patient["t2w"], "T2W"),
            row(cube_patient["adc"], "T2W"),
            row(cube_patient["adc"], "ADC"),
        ],
    )
    with pytest.raises(ManifestError) as error:
        load_manifest(manifest)
    assert error.value.problems == [
        f"{manifest}: line 3: {cube_patient['adc']}: a second T2W volume of patient P1 beside "
        "line 2; give the rows a study_id each to say which sequences belong together, or pair "
        "them by hand with pair_key"
    ]


def test_t2w_slices_the_adc_does_not_reach_are_refused(cube_patient, tmp_path):
    # The same cube ADC, but only its two most inferior slices (z = -16 and -12 mm).
    import SimpleITK as sitk

    adc = sitk.ReadImage(str(cube_patient["adc"]))
    write_mha(
        tmp_path / "low.mha",
        sitk.GetArrayFromImage(adc)[:2],
        origin=adc.GetOrigin(),
        spacing=adc.GetSpacing(),
        direction=adc.GetDirection(),
    )
    manifest = write_manifest(
        tmp_path / "manifest.csv",
        [row(cube_patient["t2w"], "T2W", slices="all"), row(tmp_path / "low.mha", "ADC")],
    )
    with pytest.raises(ManifestError) as error:
        load_manifest(manifest)
    # T2W slices lie at z = -13.5 + 3 k; the ADC covers z < -10 mm (half a slice above -12).
    assert error.value.problems == [
        f"{manifest}: line 3: {tmp_path / 'low.mha'}: does not reach slices 2, 3, 4, 5, 6, 7, "
        f"8, 9 of the T2W volume {cube_patient['t2w']}, on whose slices it is shown; choose T2W "
        "slices that both cover (its row's 'slices')"
    ]


def test_synthetic_rows_and_pictures_are_never_paired(cube_patient, tmp_path):
    manifest = write_manifest(
        tmp_path / "manifest.csv",
        [
            row(cube_patient["t2w"], "T2W"),
            {**row(cube_patient["adc"], "ADC"), "origin": "synthetic", "intensity": "raw"},
        ],
    )
    adc = [s for s in load_manifest(manifest) if s.row.sequence == Sequence.ADC]
    assert {(s.shape, s.pair_key, s.lesion) for s in adc} == {((22, 22), "", Lesion.UNKNOWN)}


def test_pair_keys_name_patient_study_and_slice_and_fit_the_database():
    assert pair_key("ProstateX-0000", "1.2.3", 9) == "ProstateX-0000/1.2.3/9"
    long = pair_key("P" * 100, "1." * 40, 12)
    assert len(long) <= MAX_PAIR_KEY and long.endswith("/12")
    assert long != pair_key("P" * 100, "1." * 40, 13)
    assert long != pair_key("Q" * 100, "1." * 40, 12)


def test_grids_refuse_numbers_that_place_no_voxel():
    good = ((2, 3, 4), (0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 2))
    assert Grid.from_steps(*good) is not None
    assert Grid.from_steps((2, 3, 4), (0, 0, float("nan")), *good[2:]) is None
    assert Grid.from_steps((2, 3, 4), (0, 0, 0), (1, 0, 0), (0, 0, 0), (0, 0, 2)) is None
    assert Grid.from_steps((2, 3, 4), (0, 0, 0), (1, 0, 0), (1, 1e-6, 0), (0, 0, 2)) is None
    assert Grid.from_steps((0, 3, 4), *good[1:]) is None


def test_resampling_onto_the_same_grid_changes_nothing_and_far_grids_cover_nothing():
    grid = Grid.from_steps((3, 4, 5), (0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 2))
    far = Grid.from_steps((3, 4, 5), (500, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 2))
    assert grid is not None and far is not None
    values = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    assert np.array_equal(resample(values, grid, grid, nearest=False), values)
    assert coverage(grid, grid).tolist() == [1.0, 1.0, 1.0]
    assert coverage(far, grid).tolist() == [0.0, 0.0, 0.0]
    assert grid.matches(grid) and not grid.matches(far)
