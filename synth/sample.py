"""Sampling: one readable loop over the scheduler's timesteps, with classifier-free guidance.

Reproducibility: image i of a request gets its own seed (seed + i) and a `torch.Generator`
seeded with it draws its initial noise (on the CPU, so CPU and GPU start from the same noise)
and any noise the sampler needs. Sampling image i alone, with its seed, gives the same image
whatever the batch size. An image is named by (checkpoint sha256, prompt, seed, sampler, steps,
guidance, condition, lesion mask).

Lesion masks (models trained with `--mask-channel`): each image may be given the outline of its
lesion (`lesion_masks`), which both halves of a guided batch see; guidance acts on the prompt
alone. An image without a mask is sampled with its mask unknown, as the model learned from mask
dropout, so prompts alone keep working. `write_samples` writes each image's mask, when it has
one, to masks/<image>.png and the manifest's `mask` column, as its ground truth for the
importer.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

from study.imaging.canonical import write_canonical_png
from study.imaging.manifest import load_manifest, write_manifest
from study.imaging.mask import write_mask_png
from study.imaging.render import fit_square
from study.imaging.types import Intensity, Lesion, Origin, Sequence
from synth.checkpoint import Generator
from synth.contract import (
    AUTO_LESION_MASK,
    DEFAULT_GUIDANCE,
    DEFAULT_SAMPLER,
    DEFAULT_STEPS,
    SAMPLERS,
    Sampler,
)
from synth.data import fit_mask
from synth.errors import SynthError
from synth.lesion_masks import (
    MASKS_DIR,
    auto_lesion_mask,
    check_truth_agrees,
    mask_lesion,
    read_lesion_mask,
)
from synth.model import ConditionalUNet, ModelConfig
from synth.text import parse_prompt

CONDITION_SEQUENCE = Sequence.T2W


def make_scheduler(
    config: ModelConfig, sampler: Sampler
) -> DDIMScheduler | DPMSolverMultistepScheduler:
    """A fresh scheduler. Both start at t = T - 1 ("trailing" spacing: pure noise, as in
    training, Lin et al. 2024) and keep the predicted x_0 inside the data range [-1, 1]."""
    common = {
        "num_train_timesteps": config.num_train_timesteps,
        "beta_schedule": config.beta_schedule,
        "prediction_type": config.prediction_type,
        "timestep_spacing": "trailing",
    }
    if sampler == "ddim":
        return DDIMScheduler(**common, clip_sample=True, clip_sample_range=1.0)
    if sampler == "dpmpp":
        # Thresholding at ratio 0.995 with sample_max_value 1 clips x_0 to [-1, 1] (Imagen).
        return DPMSolverMultistepScheduler(
            **common,
            algorithm_type="dpmsolver++",
            solver_order=2,
            thresholding=True,
            sample_max_value=1.0,
        )
    raise SynthError(f"unknown sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}")


def sampler_steps(sampler: str, steps: int | None) -> int:
    """`steps`, or the sampler's default when None; SynthError for what cannot run."""
    if sampler not in SAMPLERS:
        raise SynthError(f"unknown sampler {sampler!r}: choose one of {', '.join(SAMPLERS)}")
    steps = DEFAULT_STEPS[sampler] if steps is None else steps
    if steps < 1:
        raise SynthError(f"steps must be at least 1, not {steps}")
    return steps


def _condition_tensor(
    condition: np.ndarray | None, count: int, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Condition images [count, 1, S, S] in [-1, 1] and their mask [count]."""
    if condition is None:
        return torch.zeros(count, 1, size, size), torch.zeros(count)
    values = np.asarray(condition, dtype=np.float32)
    if values.ndim == 2:
        values = np.broadcast_to(values, (count, *values.shape))
    if values.shape != (count, size, size):
        raise SynthError(
            f"condition images must be [{count}, {size}, {size}] (or one [{size}, {size}]), not "
            f"{list(values.shape)}: fit them with study.imaging.render.fit_square(array, {size})"
        )
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise SynthError("condition images must be canonical arrays: finite, in [0, 1]")
    return torch.from_numpy(values.copy()).unsqueeze(1) * 2 - 1, torch.ones(count)


def _lesion_mask_tensor(
    model: Generator, masks: list[np.ndarray | None] | None, count: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Lesion masks [count, 1, S, S] (1 inside a lesion) and which are known [count]; None for
    a model without the mask channel (which takes no masks)."""
    size = model.config.image_size
    if not model.config.mask_channel:
        if masks is not None and any(mask is not None for mask in masks):
            raise SynthError(_no_mask_channel(model))
        return None
    masks = masks if masks is not None else [None] * count
    if len(masks) != count:
        raise SynthError(f"need one lesion mask (or None) per image: {len(masks)} for {count}")
    if any(mask is not None and np.shape(mask) != (size, size) for mask in masks):
        raise SynthError(f"lesion masks must be [{size}, {size}], the model's size")
    empty = np.zeros((size, size), bool)
    values = np.stack([empty if m is None else np.asarray(m) > 0 for m in masks])
    known = torch.tensor([mask is not None for mask in masks], dtype=torch.float32)
    return torch.from_numpy(values.astype(np.float32)).unsqueeze(1), known


def _no_mask_channel(model: Generator) -> str:
    return (
        f"{model.directory or model.name}: this checkpoint has no lesion-mask channel (it was "
        "trained without --mask-channel), so it cannot take --lesion-mask: leave it out, or "
        "train with --mask-channel"
    )


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA; nothing (float32) elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prompt_embeddings(
    network: ConditionalUNet, tokens: torch.Tensor, empty: torch.Tensor, *, guided: bool
) -> torch.Tensor:
    """The prompts' embeddings, followed, when guided, by as many embeddings of the empty prompt
    (`empty`: its token ids, one row): the `text` that `denoise` takes."""
    text = network.encode_prompt(tokens)
    if guided:
        text = torch.cat([text, network.encode_prompt(empty).expand(len(tokens), -1)])
    return text


def denoise(
    network: ConditionalUNet,
    config: ModelConfig,
    x: torch.Tensor,
    text: torch.Tensor,
    condition: torch.Tensor,
    mask: torch.Tensor,
    *,
    sampler: Sampler,
    steps: int,
    guidance: float,
    generators: list[torch.Generator] | None = None,
    on_step: Callable[[torch.Tensor, int], None] | None = None,
    lesion_mask: torch.Tensor | None = None,
    lesion_mask_known: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run the sampler from noise `x` [n, 1, S, S] to an image in [-1, 1].

    `text` holds the n prompt embeddings, followed, when guided (`guidance` != 1), by n
    embeddings of the empty prompt. `on_step(x_t, t)` sees the state before each step. Runs in
    bf16 autocast on CUDA, float32 elsewhere; call it under `torch.inference_mode()`.
    `lesion_mask` [n, 1, S, S] and `lesion_mask_known` [n], for a model with the mask channel.
    """
    guided = guidance != 1
    if guided:
        condition, mask = torch.cat([condition, condition]), torch.cat([mask, mask])
        if lesion_mask is not None and lesion_mask_known is not None:
            lesion_mask = torch.cat([lesion_mask, lesion_mask])
            lesion_mask_known = torch.cat([lesion_mask_known, lesion_mask_known])
    autocast = autocast_for(x.device)
    scheduler = make_scheduler(config, sampler)
    scheduler.set_timesteps(steps, device=x.device)
    x = x * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        if on_step:
            on_step(x, int(t))
        # 1. predict v; the second half of a guided batch has the empty prompt
        model_input = scheduler.scale_model_input(x, t)
        if guided:
            model_input = torch.cat([model_input, model_input])
        with autocast:
            output = network.denoise(
                model_input, t, text, condition, mask, lesion_mask, lesion_mask_known
            )
        output = output.float()
        if guided:
            # classifier-free guidance (Ho & Salimans 2022, eq. 6), applied to v
            conditional, unconditional = output.chunk(2)
            output = unconditional + guidance * (conditional - unconditional)
        # 2. x_t -> x_{t-1}: DDIM (Song et al. 2021, eq. 12) or DPM-Solver++(2M)
        #    (Lu et al. 2022, Algorithm 2)
        x = scheduler.step(output, t, x, generator=generators).prev_sample
    return x


def sample_images(
    model: Generator,
    prompts: list[str],
    seeds: list[int],
    *,
    sampler: Sampler = DEFAULT_SAMPLER,
    steps: int | None = None,
    guidance: float = DEFAULT_GUIDANCE,
    condition: np.ndarray | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    lesion_masks: list[np.ndarray | None] | None = None,
) -> np.ndarray:
    """Images [n, S, S] float32 in [0, 1], one per (prompt, seed).

    `condition`: T2W slices in [0, 1] at the model's size, [n, S, S] or one [S, S] for all;
    None samples from the prompt alone. `lesion_masks`: per image, its [S, S] lesion mask
    (nonzero inside the lesion) or None (unknown), for a model with the mask channel.
    `guidance` 1 uses the prompt only, 0 ignores it, and larger values push towards it (one
    doubled batch per step). On CUDA the network runs under bf16 autocast on `batch_size`
    images at a time. On the CPU it runs in float32 on one image at a time: that was no slower
    there (default model, 128 px, 2 cores: 0.28 to 0.38 s per guided step alone, 0.48 to 1.0 s
    per image at batch 16), and it keeps every image bit-identical whatever the batch.
    `progress(done, total)` counts network steps.
    """
    if len(prompts) != len(seeds) or not prompts:
        raise SynthError(
            f"need one seed per prompt and at least one: {len(prompts)} prompts, {len(seeds)} seeds"
        )
    if any(seed < 0 or seed >= 2**63 for seed in seeds):
        raise SynthError("seeds must be in [0, 2**63)")
    steps = sampler_steps(sampler, steps)
    if not guidance >= 0:
        raise SynthError(f"guidance must be 0 or more, not {guidance}")
    if batch_size < 1:
        raise SynthError(f"batch size must be at least 1, not {batch_size}")
    size = model.config.image_size
    conditions, masks = _condition_tensor(condition, len(prompts), size)
    lesions = _lesion_mask_tensor(model, lesion_masks, len(prompts))
    device = torch.device(device) if device is not None else model.device
    network = model.network.to(device)
    tokens = model.vocabulary.encode_batch(prompts, model.config.max_tokens).to(device)
    empty = model.vocabulary.encode_batch([""], model.config.max_tokens).to(device)
    guided = guidance != 1
    per_call = 1 if device.type == "cpu" else batch_size
    total = math.ceil(len(prompts) / per_call) * steps
    done = 0

    def step_done(_: torch.Tensor, __: int) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    images = []
    for start in range(0, len(prompts), per_call):
        rows = slice(start, start + per_call)
        generators = [torch.Generator().manual_seed(seed) for seed in seeds[rows]]
        x = torch.cat([torch.randn((1, 1, size, size), generator=g) for g in generators])
        x = x.to(device)
        condition_in, mask_in = conditions[rows].to(device), masks[rows].to(device)
        lesion_in, known_in = (
            (lesions[0][rows].to(device), lesions[1][rows].to(device)) if lesions else (None, None)
        )
        with torch.inference_mode():
            with autocast_for(device):
                text = prompt_embeddings(network, tokens[rows], empty, guided=guided)
            x = denoise(
                network,
                model.config,
                x,
                text,
                condition_in,
                mask_in,
                sampler=sampler,
                steps=steps,
                guidance=guidance,
                generators=generators,
                on_step=step_done,
                lesion_mask=lesion_in,
                lesion_mask_known=known_in,
            )
        images.append(((x.float() + 1) / 2).clamp(0, 1).cpu())
    return torch.cat(images)[:, 0].numpy().astype(np.float32, copy=False)


@dataclass(frozen=True)
class ConditionRow:
    """A T2W slice of a condition manifest that synthetic DWI/ADC images are made from."""

    image: np.ndarray  # S x S, canonical, as readers see it
    patient_id: str
    pair_key: str
    slice_index: int
    lesion: Lesion
    source_sha256: str
    # The slice's lesion mask fitted to the model's size (uint8, 1: lesion); None without one.
    mask: np.ndarray | None = None


def read_condition_rows(path: Path, size: int) -> list[ConditionRow]:
    """The T2W slices of a manifest, fitted to the model's size; other sequences are skipped.
    A slice with a mask takes its lesion status from its mask at that size (`mask_lesion`)."""
    rows = []
    for item in load_manifest(path, allow_absolute=True):
        if item.row.sequence != CONDITION_SEQUENCE:
            continue
        mask = None if item.mask is None else fit_mask(item.mask, size).astype(np.uint8)
        rows.append(
            ConditionRow(
                image=fit_square(item.canonical, size),
                patient_id=item.row.patient_id,
                pair_key=item.pair_key,
                slice_index=item.slice_index,
                lesion=item.lesion if mask is None else mask_lesion(mask),
                source_sha256=item.source_sha256,
                mask=mask,
            )
        )
    if not rows:
        raise SynthError(
            f"{path}: no T2W slices to condition on; image conditioning makes DWI or ADC images "
            "from T2W slices"
        )
    return rows


def _first_known(*values: Lesion | None) -> Lesion | None:
    return next((value for value in values if value is not None), None)


def write_samples(
    model: Generator,
    prompt: str,
    n: int,
    out: Path,
    *,
    seed: int = 0,
    sampler: Sampler = DEFAULT_SAMPLER,
    steps: int | None = None,
    guidance: float = DEFAULT_GUIDANCE,
    device: str | torch.device | None = None,
    batch_size: int = 8,
    condition_manifest: Path | None = None,
    sequence: Sequence | None = None,
    lesion: Lesion | None = None,
    progress: Callable[[int, int], None] | None = None,
    lesion_mask: str | None = None,
) -> Path:
    """Sample `n` images (per condition row) to `out`/images and write `out`/manifest.csv.

    Sequence and lesion labels: `sequence`/`lesion` when given, else what the prompt says
    (`parse_prompt`), else, for the lesion of a conditioned image, the condition row's.
    `lesion_mask`: a mask file, or "auto" (synth.lesion_masks), for a model with the mask
    channel. A conditioned image takes its condition row's mask, when it has one (fed to the
    model when it has the channel). Each mask is written to `out`/masks/. Returns the manifest's
    path.
    """
    if n < 1:
        raise SynthError(f"--n must be at least 1, not {n}")
    steps = sampler_steps(sampler, steps)
    manifest_path = out / "manifest.csv"
    if manifest_path.exists():
        raise SynthError(f"{manifest_path} already exists: choose a new --out")
    prompt_sequence, prompt_lesion = parse_prompt(prompt)
    sequence = prompt_sequence if sequence is None else sequence
    if sequence is None:
        raise SynthError(
            f"cannot tell the sequence from the prompt {prompt!r}: name it in the prompt "
            "(T2W, ADC, DWI) or pass --sequence"
        )
    if lesion_mask is not None and not model.config.mask_channel:
        raise SynthError(_no_mask_channel(model))
    if lesion_mask is not None and condition_manifest is not None:
        raise SynthError(
            f"--lesion-mask: with --condition-manifest each image takes the mask of its T2W "
            f"slice (the mask column of {condition_manifest}); leave --lesion-mask out"
        )
    conditions: list[ConditionRow | None] = [None]
    if condition_manifest is not None:
        if sequence == CONDITION_SEQUENCE:
            raise SynthError(
                "image conditioning makes DWI or ADC images from T2W slices, but the prompt "
                "asks for T2W: ask for DWI or ADC, or leave out --condition-manifest"
            )
        conditions = list(read_condition_rows(condition_manifest, model.config.image_size))
    lesions = [_first_known(lesion, prompt_lesion, row and row.lesion) for row in conditions]
    if any(value is None for value in lesions):
        raise SynthError(
            f"cannot tell from the prompt {prompt!r} whether there is a lesion: say so in the "
            "prompt ('with a lesion', 'without lesion') or pass --lesion 1|0|unknown"
        )
    jobs = [
        (row, row_lesion)
        for row, row_lesion in zip(conditions, lesions, strict=True)
        for _ in range(n)
    ]
    seeds = [seed + i for i in range(len(jobs))]
    size = model.config.image_size
    masks: list[np.ndarray | None] = [row.mask if row else None for row, _ in jobs]
    for row, row_lesion in jobs:
        if row and row.mask is not None:
            where = f"{condition_manifest}: T2W slice {row.slice_index} of {row.patient_id!r}"
            check_truth_agrees(where, row.mask, row_lesion)
    if lesion_mask == AUTO_LESION_MASK:
        masks = [
            auto_lesion_mask(image_seed, size, row_lesion)
            for (_, row_lesion), image_seed in zip(jobs, seeds, strict=True)
        ]
    elif lesion_mask is not None:
        labels = read_lesion_mask(Path(lesion_mask), size, lesions[0])
        masks = [labels] * len(jobs)
    condition = np.stack([row.image for row, _ in jobs]) if condition_manifest is not None else None
    images = sample_images(
        model,
        [prompt] * len(jobs),
        seeds,
        sampler=sampler,
        steps=steps,
        guidance=guidance,
        condition=condition,
        device=device,
        batch_size=batch_size,
        progress=progress,
        lesion_masks=masks if model.config.mask_channel else None,
    )
    (out / "images").mkdir(parents=True, exist_ok=True)
    records: list[dict[str, object]] = []
    for (row, row_lesion), image_seed, image, mask in zip(jobs, seeds, images, masks, strict=True):
        relative = Path("images") / f"{sequence.value.lower()}-{image_seed}.png"
        write_canonical_png(image, out / relative)
        mask_path = None if mask is None else Path(MASKS_DIR) / relative.name
        if mask_path is not None:
            write_mask_png(mask, out / mask_path)
        records.append(
            {
                "path": relative,
                "origin": Origin.SYNTHETIC,
                "sequence": sequence,
                "lesion": row_lesion,
                "patient_id": row.patient_id if row else "",
                "slice_index": row.slice_index if row else None,
                "pair_key": row.pair_key if row and row.pair_key else f"syn-{image_seed}",
                "intensity": Intensity.CANONICAL,
                "generator": model.name,
                "prompt": prompt,
                "seed": image_seed,
                "checkpoint_sha256": model.sha256,
                "sampler": sampler,
                "steps": steps,
                "guidance": float(guidance),
                "condition_sha256": row.source_sha256 if row else None,
                "mask": mask_path,
            }
        )
    return write_manifest(manifest_path, records)
