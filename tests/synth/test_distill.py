"""The few-step student (`python -m synth distill`) of a tiny teacher, on the CPU."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from tiny_generator import synth, train_tiny_checkpoint

from synth.checkpoint import checkpoint_sha256, load_checkpoint
from synth.contract import DistillRequest
from synth.distill import distill, step_targets, teacher_trajectories
from synth.errors import SynthError
from synth.model import model_config
from synth.progress import SilentProgress
from synth.sample import make_scheduler

# PyTorch on one thread (tests/synth/conftest.py): the student trains in this process, several
# times slower on two threads when the other core is busy.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_checkpoint(tmp_path_factory.mktemp("teacher"))


def test_the_targets_are_the_x0_whose_ddim_step_lands_on_the_teachers_next_state():
    """States on one deterministic DDIM path (one image x0, one noise): every target is that x0,
    and fed back as v to diffusers' DDIM step it reproduces the recorded next state."""
    config = model_config("tiny", 32)
    scheduler = make_scheduler(config, "ddim")
    scheduler.set_timesteps(4)
    timesteps = [int(t) for t in scheduler.timesteps]
    alphas = torch.cat([scheduler.alphas_cumprod[timesteps], torch.ones(1)])
    generator = torch.Generator().manual_seed(3)
    image = torch.rand(5, 1, 8, 8, generator=generator) * 1.8 - 0.9
    noise = torch.randn(5, 1, 8, 8, generator=generator)
    states = torch.stack([a.sqrt() * image + (1 - a).sqrt() * noise for a in alphas], dim=1)
    for index in range(len(timesteps)):
        step = torch.full((5,), index)
        x0 = step_targets(states, step, alphas)
        x_t = states[:, index]
        a_t, s_t = alphas[index].sqrt(), (1 - alphas[index]).sqrt()
        v = (a_t * x_t - x0) / s_t  # the v whose x0 prediction a_t x_t - s_t v is the target
        assert torch.allclose(x0, image, atol=1e-4)
        if index < len(timesteps) - 1:
            reached = scheduler.step(v, timesteps[index], x_t).prev_sample
            assert torch.allclose(reached, states[:, index + 1], atol=1e-4)


def test_teacher_steps_that_skip_a_student_timestep_are_refused(teacher: Path, tmp_path: Path):
    manifest = teacher.parent / "phantom" / "manifest.csv"
    config = DistillRequest(
        teacher=teacher, manifest=manifest, out=tmp_path / "student", teacher_steps=6
    )
    with pytest.raises(SynthError, match="choose --teacher-steps a multiple of --student-steps"):
        distill(config)
    assert not (tmp_path / "student").exists()


@pytest.mark.slow
def test_the_student_follows_the_teacher_better_than_the_teacher_in_as_few_steps(
    teacher: Path, tmp_path: Path
):
    """On the teacher's own trajectories, the student's 4 unguided DDIM steps end nearer the
    teacher's 8-step guided images than the teacher's own 4 unguided DDIM steps do."""
    manifest = teacher.parent / "phantom" / "manifest.csv"
    config = DistillRequest(
        teacher=teacher,
        manifest=manifest,
        out=tmp_path / "student",
        # Small enough for the suite (about 15 s here), with room: the student ends at about
        # 0.63 of the teacher's error on these trajectories.
        trajectories=8,
        teacher_steps=8,
        steps=100,
        batch=8,
        lr=3e-3,
        device="cpu",
    )
    out = distill(config)
    data, _, _ = teacher_trajectories(config, SilentProgress(), None)

    def error(folder: Path) -> float:
        model = load_checkpoint(folder)
        scheduler = make_scheduler(model.config, "ddim")
        scheduler.set_timesteps(4)
        x = data.states[:, 0].clone()
        with torch.inference_mode():
            text = model.network.encode_prompt(data.token_ids)
            for t in scheduler.timesteps:
                v = model.network.denoise(x, t, text, data.condition, data.condition_mask)
                x = scheduler.step(v, t, x).prev_sample
        return float(torch.mean((x - data.states[:, -1]) ** 2))

    assert error(out) < 0.9 * error(teacher)

    document = json.loads((out / "config.json").read_text())
    training = document["training"]
    assert training["distilled_from"] == checkpoint_sha256(teacher)
    assert training["sampling"] == {"sampler": "ddim", "steps": 4, "guidance": 1.0}
    assert training["distillation"]["trajectories"] == 8
    assert training["distillation"]["steps"] == 100
    assert document["weights_dtype"] == "float16"

    # `synth sample` uses the student's own sampling unless told otherwise.
    synth(
        *("sample", "--checkpoint", "student"),
        *("--prompt", "A T2 image of a prostate with a lesion"),
        *("--n", "2", "--out", "samples", "--device", "cpu"),
        cwd=tmp_path,
    )
    with (tmp_path / "samples" / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["sampler"], r["steps"], r["guidance"]) for r in rows] == [("ddim", "4", "1.0")] * 2
    assert {r["checkpoint_sha256"] for r in rows} == {checkpoint_sha256(out)}
