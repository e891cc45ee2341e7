"""A few-step student of a trained generator: trajectory distillation.

The teacher samples with 20 guided DPM-Solver++ steps (two network calls per step); the
student, initialised with the teacher's weights, makes the same images with a few unguided
DDIM steps (one call per step), fast enough for a CPU. For each trajectory the teacher's state
x_t is recorded at the student's timesteps t_0 > t_1 > ... (the DDIM "trailing" timesteps) and
at the end; the student learns, from x_{t_i}, the x_0 for which a deterministic DDIM step
(Song et al. 2021, eq. 12) lands on the teacher's x_{t_{i+1}}:

    x_{t_{i+1}} = a_{i+1} x0 + s_{i+1} (x_{t_i} - a_i x0) / s_i
    =>  x0 = (x_{t_{i+1}} - (s_{i+1} / s_i) x_{t_i}) / (a_{i+1} - s_{i+1} a_i / s_i)

with a = sqrt(alpha_bar), s = sqrt(1 - alpha_bar), and, for the last step, x0 = the teacher's
image. Guidance is baked in (the student runs with guidance 1), as in Meng et al. 2023, and the
multi-step targets follow the teacher's ODE trajectory as in knowledge distillation (Luhman and
Luhman 2021) and TRACT (Berthelot et al. 2023). Prompts and T2W conditions are drawn like the
teacher's training batches, from the manifest it was trained on.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch

from synth.checkpoint import Generator, load_checkpoint, save_checkpoint
from synth.contract import CHECKPOINT_CONFIG, DEFAULT_MASK_DROPOUT, DistillRequest
from synth.data import BatchSampler, training_set_from_manifest
from synth.errors import SynthError
from synth.model import ModelConfig
from synth.progress import Progress, SilentProgress
from synth.sample import autocast_for, denoise, make_scheduler, prompt_embeddings
from synth.train import describe_device, resolve_device, step_seed

STUDENT_SAMPLER = "ddim"
# A share of the trajectories is drawn without its T2W condition, so that the student also
# makes DWI and ADC images from the prompt alone; likewise, for a teacher with the lesion-mask
# channel, a share is drawn with the mask unknown.
CONDITION_DROPOUT = 0.3
MASK_DROPOUT = DEFAULT_MASK_DROPOUT


# The name synth.demo_assets and notebooks distil with.
DistillConfig = DistillRequest


@dataclass
class Trajectories:
    """Teacher states: `states[:, i]` is x at the student's i-th timestep, `states[:, -1]`
    the teacher's image; with the prompts' token ids and T2W conditions that made them."""

    states: torch.Tensor  # [N, K + 1, 1, S, S]
    token_ids: torch.Tensor  # [N, L]
    condition: torch.Tensor  # [N, 1, S, S]
    condition_mask: torch.Tensor  # [N]
    lesion_mask: torch.Tensor  # [N, 1, S, S] (all unknown for a teacher without the channel)
    lesion_mask_known: torch.Tensor  # [N]


def student_timesteps(config: DistillRequest, teacher_config: ModelConfig) -> list[int]:
    """The student's DDIM timesteps; each must be one of the teacher sampler's timesteps."""
    student = make_scheduler(teacher_config, STUDENT_SAMPLER)
    student.set_timesteps(config.student_steps)
    teacher = make_scheduler(teacher_config, "dpmpp")
    teacher.set_timesteps(config.teacher_steps)
    wanted = [int(t) for t in student.timesteps]
    missing = sorted(set(wanted) - {int(t) for t in teacher.timesteps})
    if missing:
        raise SynthError(
            f"{config.student_steps} student steps need teacher states at t = {wanted}, but "
            f"{config.teacher_steps} teacher steps pass {missing} by: choose --teacher-steps "
            f"a multiple of --student-steps"
        )
    return wanted


def teacher_trajectories(
    config: DistillRequest, progress: Progress, deadline: float | None
) -> tuple[Trajectories, Generator, list[int]]:
    device = torch.device(resolve_device(config.device))
    teacher = load_checkpoint(config.teacher, device)
    network = teacher.network
    timesteps = student_timesteps(config, teacher.config)
    training_set = training_set_from_manifest(config.manifest, teacher.config.image_size)
    sampler = BatchSampler(
        training_set,
        teacher.vocabulary,
        teacher.config.max_tokens,
        device,
        prompt_dropout=0.0,
        condition_dropout=CONDITION_DROPOUT,
        unknown_word_rate=0.0,
        mask_dropout=MASK_DROPOUT if teacher.config.mask_channel else None,
    )
    empty = teacher.vocabulary.encode_batch([""], teacher.config.max_tokens).to(device)
    chunk = 256 if device.type == "cuda" else 8
    parts: list[Trajectories] = []
    made = 0
    while made < config.trajectories:
        n = min(chunk, config.trajectories - made)
        generator = torch.Generator(device=device).manual_seed(step_seed(config.seed, 0, made))
        batch = sampler.sample(n, generator)
        noise = torch.randn(batch.images.shape, generator=generator, device=device)
        recorded: dict[int, torch.Tensor] = {}

        def record(x: torch.Tensor, t: int, recorded: dict[int, torch.Tensor] = recorded) -> None:
            if t in timesteps:
                recorded[t] = x.float().clone()

        with torch.inference_mode():
            image = denoise(
                network,
                teacher.config,
                noise,
                prompt_embeddings(network, batch.token_ids, empty, guided=True),
                batch.condition,
                batch.condition_mask,
                sampler="dpmpp",
                steps=config.teacher_steps,
                guidance=config.guidance,
                on_step=record,
                **_lesion_masks(teacher.config, batch.lesion_mask, batch.lesion_mask_known),
            )
        states = torch.stack([recorded[t] for t in timesteps] + [image.float()], dim=1)
        parts.append(
            Trajectories(
                states.to(torch.bfloat16 if device.type == "cuda" else torch.float32),
                batch.token_ids,
                batch.condition,
                batch.condition_mask,
                batch.lesion_mask,
                batch.lesion_mask_known,
            )
        )
        made += n
        progress.update(made)
        if deadline is not None and time.perf_counter() > deadline:
            raise SynthError("--max-minutes passed while the teacher was still sampling")
    merged = Trajectories(
        torch.cat([p.states for p in parts]),
        torch.cat([p.token_ids for p in parts]),
        torch.cat([p.condition for p in parts]),
        torch.cat([p.condition_mask for p in parts]),
        torch.cat([p.lesion_mask for p in parts]),
        torch.cat([p.lesion_mask_known for p in parts]),
    )
    return merged, teacher, timesteps


def _lesion_masks(
    config: ModelConfig, lesion_mask: torch.Tensor, known: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The lesion-mask arguments of `denoise` for a model with the mask channel; none without."""
    if not config.mask_channel:
        return {}
    return {"lesion_mask": lesion_mask, "lesion_mask_known": known}


def step_targets(states: torch.Tensor, index: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """The x0 whose DDIM step from states[:, index] reaches states[:, index + 1].

    `alphas` holds alpha_bar at each student timestep and 1 after the last (the image).
    """
    rows = torch.arange(len(states), device=states.device)
    x_t = states[rows, index].float()
    x_next = states[rows, index + 1].float()
    a_t, a_next = alphas[index].sqrt(), alphas[index + 1].sqrt()
    s_t, s_next = (1 - alphas[index]).sqrt(), (1 - alphas[index + 1]).sqrt()
    shape = (-1, 1, 1, 1)
    ratio = (s_next / s_t).view(shape)
    return (x_next - ratio * x_t) / (a_next.view(shape) - ratio * a_t.view(shape))


def distill(
    config: DistillRequest,
    teacher_progress: Progress | None = None,
    student_progress: Progress | None = None,
) -> Path:
    """Sample the teacher's trajectories, train the student on them, save it; return its folder.

    `teacher_progress` counts trajectories, `student_progress` training steps."""
    progress = student_progress or SilentProgress()
    if (config.out / CHECKPOINT_CONFIG).exists():
        raise SynthError(f"{config.out} already holds a checkpoint: choose a new --out")
    started = time.perf_counter()
    deadline = None if config.max_minutes is None else started + 60 * config.max_minutes
    data, teacher, timesteps = teacher_trajectories(
        config, teacher_progress or SilentProgress(), deadline
    )
    device = data.states.device
    student = copy.deepcopy(teacher.network).float().train().requires_grad_(True)
    optimizer = torch.optim.AdamW(student.parameters(), lr=config.lr, weight_decay=0.0)
    alphas_cumprod = make_scheduler(teacher.config, STUDENT_SAMPLER).alphas_cumprod.to(device)
    alphas = torch.cat([alphas_cumprod[timesteps], torch.ones(1, device=device)])
    t_values = torch.tensor(timesteps, device=device)
    autocast = autocast_for(device)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    step, loss_value = 0, float("nan")
    while step < config.steps:
        rows = torch.randint(len(data.states), (config.batch,), generator=generator, device=device)
        index = torch.randint(len(timesteps), (config.batch,), generator=generator, device=device)
        target = step_targets(data.states[rows], index, alphas)
        x_t = data.states[rows, index].float()
        a_t = alphas[index].sqrt().view(-1, 1, 1, 1)
        s_t = (1 - alphas[index]).sqrt().view(-1, 1, 1, 1)
        with autocast:
            text = student.encode_prompt(data.token_ids[rows])
            masks = _lesion_masks(
                teacher.config, data.lesion_mask[rows], data.lesion_mask_known[rows]
            )
            v = student.denoise(
                x_t,
                t_values[index],
                text,
                data.condition[rows],
                data.condition_mask[rows],
                masks.get("lesion_mask"),
                masks.get("lesion_mask_known"),
            )
        x0 = a_t * x_t - s_t * v.float()
        loss = torch.nn.functional.mse_loss(x0, target.clamp(-1, 1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        step += 1
        if step % 10 == 0 or step == config.steps:
            loss_value = float(loss.detach())
            progress.update(step, loss=loss_value)
        if deadline is not None and time.perf_counter() > deadline:
            break
    training = {
        **teacher.training,
        "distilled_from": teacher.sha256,
        "distillation": {
            "method": "trajectory distillation (DDIM targets on the teacher's ODE path)",
            "teacher_sampler": "dpmpp",
            "teacher_steps": config.teacher_steps,
            "teacher_guidance": config.guidance,
            "trajectories": len(data.states),
            "steps": step,
            "batch": config.batch,
            "lr": config.lr,
            "loss": loss_value,
            "seconds": round(time.perf_counter() - started, 1),
            "device": describe_device(device),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "sampling": {
            "sampler": STUDENT_SAMPLER,
            "steps": config.student_steps,
            "guidance": 1.0,
        },
    }
    student.eval().requires_grad_(False)
    save_checkpoint(
        config.out,
        student.state_dict(),
        teacher.config,
        teacher.vocabulary,
        training,
        half=True,
    )
    return config.out
