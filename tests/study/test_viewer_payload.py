"""The viewer's pixel payload: exact samples, a lossless round trip of 16-bit canonical images,
stacks, one length for every viewport of a study (real and synthetic, whatever their size),
nothing but samples, the cache and the case prepared ahead, and the errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image
from seeding import AssetRow, add_assets, pairs

from study.design import PairedBlock, SingleBlock, StudyPlan, create_study, open_study
from study.imaging.canonical import read_canonical, write_canonical_png
from study.imaging.errors import ImagingError
from study.imaging.render import fit_square
from study.imaging.types import Origin, Sequence
from study.questions import TEMPLATES
from study.readers import add_reader
from study.reading import next_case, record_answer
from study.storage import AssetStore
from study.viewer_payload import (
    SAMPLE_MAX,
    ViewerCase,
    ViewportPixels,
    clear_viewer_cache,
    prefetch_viewer_case,
    slice_samples,
    stack_samples,
    stored_stack,
    viewer_case,
)


def decode(data: bytes, side: int) -> np.ndarray:
    """What the browser does: uint16 little-endian, slices of side x side."""
    return np.frombuffer(data, dtype="<u2").reshape(-1, side, side)


def test_samples_are_the_canonical_values_times_65535_little_endian():
    canonical = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
    # 0.5 * 65535 = 32767.5: half-way rounds up, to 0x8000.
    assert slice_samples(canonical, 2) == b"\x00\x00\x00\x40\x00\x80\xff\xff"
    # Values a sampler overshot are clipped.
    overshot = np.array([[1.05, -0.05], [0.75, 0.125]], np.float32)
    assert decode(slice_samples(overshot, 2), 2).tolist() == [[[65535, 0], [49151, 8192]]]


def test_a_16_bit_canonical_image_arrives_exactly_as_imported(tmp_path):
    levels = np.random.default_rng(3).integers(0, SAMPLE_MAX + 1, (40, 40)).astype(np.uint16)
    path = tmp_path / "image.png"
    Image.fromarray(levels).save(path)
    canonical = read_canonical(path)
    decoded = decode(slice_samples(canonical, 40), 40)[0]
    np.testing.assert_array_equal(decoded, levels)
    # The writer's rule is the payload's rule: written again, the same levels.
    write_canonical_png(decoded / SAMPLE_MAX, tmp_path / "again.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "again.png")), levels)


def test_images_are_fitted_into_the_square_as_the_renders_are():
    canonical = np.random.default_rng(1).random((30, 20), dtype=np.float32)
    decoded = decode(slice_samples(canonical, 64), 64)[0]
    expected = np.floor(np.clip(fit_square(canonical, 64), 0, 1) * SAMPLE_MAX + 0.5)
    np.testing.assert_array_equal(decoded, expected)
    # Padded left and right with black, aspect kept.
    assert not decoded[:, :10].any() and not decoded[:, -10:].any()


def test_a_stack_is_its_slices_in_order():
    slices = [np.full((8, 8), k / 4, np.float32) for k in range(5)]
    data = stack_samples(slices, 8)
    assert len(data) == 5 * 8 * 8 * 2
    decoded = decode(data, 8)
    assert [int(s[4, 4]) for s in decoded] == [0, 16384, 32768, 49151, 65535]
    assert data == b"".join(slice_samples(s, 8) for s in slices)


@pytest.mark.parametrize(
    ("slices", "side", "problem"),
    [
        ([], 8, "at least one slice"),
        ([np.zeros((2, 2, 2))], 8, "must be 2D"),
        ([np.array([[np.nan, 0.0]])], 8, "NaN"),
        ([np.zeros((4, 4))], 0, "at least 1 pixel"),
    ],
)
def test_bad_slices_are_refused_with_the_problem_named(slices, side, problem):
    with pytest.raises(ImagingError, match=problem):
        stack_samples(slices, side)


def test_a_viewport_without_slices_is_refused(tmp_path):
    with pytest.raises(ImagingError, match="at least one slice"):
        stored_stack((), size=8, store=AssetStore(tmp_path))


def read_every_case(engine, reader: int, store: AssetStore, size: int) -> list[ViewerCase]:
    cases = []
    while (view := next_case(engine, reader)) is not None:
        cases.append(viewer_case(view, size=size, store=store))
        answers = {q.id: q.values[0] for q in view.questions}
        record_answer(engine, reader, view.public_id, answers, 1.0)
    return cases


def test_every_viewport_of_a_study_has_one_length_and_nothing_but_samples(engine, tmp_path):
    store = AssetStore(tmp_path / "assets")
    # Real images larger than the synthetic ones, both smaller than the viewer's side.
    for origin, size in ((Origin.REAL, 48), (Origin.SYNTHETIC, 24)):
        rows = [
            AssetRow(Sequence.T2W, origin, lesion, f"PATIENT-{origin.value}-{i}")
            for lesion in (0, 1)
            for i in range(2)
        ]
        add_assets(engine, rows, store=store, size=size)
        add_assets(engine, pairs(2, origin, 1) + pairs(2, origin, 0), store=store, size=size)
    plan = StudyPlan(
        "viewer",
        TEMPLATES["Seed protocol"],
        (SingleBlock(Sequence.T2W, 4), PairedBlock(cases=4)),
    )
    study_id = create_study(engine, plan)
    open_study(engine, study_id)
    reader = add_reader(engine, study_id, "r").reader_id
    clear_viewer_cache()
    cases = read_every_case(engine, reader, store, size=64)

    assert len(cases) == 8
    assert sorted(len(case.viewports) for case in cases) == [1] * 4 + [2] * 4
    viewports = [viewport for case in cases for viewport in case.viewports]
    assert {len(viewport.samples) for viewport in viewports} == {2 * 64 * 64}
    assert {viewport.slices for viewport in viewports} == {1}
    assert {viewport.label for viewport in viewports} == {"T2W", "DWI"}
    assert {case.side for case in cases} == {64}
    # The fields are the samples, the viewport's caption and count, and the opaque case id.
    assert [f.name for f in dataclasses.fields(ViewportPixels)] == ["label", "slices", "samples"]
    assert [f.name for f in dataclasses.fields(ViewerCase)] == ["key", "side", "viewports"]
    assert all("samples" not in repr(viewport) for viewport in viewports)


def test_samples_are_computed_once_and_the_next_case_ahead(engine, tmp_path):
    store = AssetStore(tmp_path / "assets")
    add_assets(engine, pairs(2, Origin.REAL, 1) + pairs(2, Origin.SYNTHETIC, 1), store=store)
    plan = StudyPlan(
        "ahead", TEMPLATES["Seed protocol"], (PairedBlock(cases=2, lesion_share=None),)
    )
    study_id = create_study(engine, plan)
    open_study(engine, study_id)
    reader = add_reader(engine, study_id, "r").reader_id
    shown = next_case(engine, reader)
    clear_viewer_cache()
    assert (
        prefetch_viewer_case(engine, reader, shown.public_id, size=40, store=store).result(
            timeout=30
        )
        is None
    )
    record_answer(engine, reader, shown.public_id, {q.id: q.values[0] for q in shown.questions}, 1)
    following = next_case(engine, reader)
    expected = []
    for viewport in following.viewports:
        path = store.path(viewport.canonical_sha256, ".npy")
        expected.append(slice_samples(np.load(path), 40))
        path.unlink()
    # The canonical files are gone: the samples come from the cache filled ahead, and they are
    # exactly what computing them now would give.
    case = viewer_case(following, size=40, store=store)
    assert [viewport.samples for viewport in case.viewports] == expected
    assert case.key == following.public_id
    clear_viewer_cache()
    with pytest.raises(FileNotFoundError):
        viewer_case(following, size=40, store=store)
