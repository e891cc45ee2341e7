"""Training: v-prediction on a cosine schedule, AdamW, EMA, Accelerate, resumable in chunks.

Each step (Ho et al. 2020, Algorithm 1, with the v target of Salimans & Ho 2022):
    x_0 ~ data, eps ~ N(0, I), t ~ U{0..T-1}
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps            (Ho et al. 2020, eq. 4)
    v   = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0           (Salimans & Ho 2022, sec. 4)
    loss = || v_theta(x_t, t, prompt, condition) - v ||^2

The random stream of step k is seeded from (seed, process, k), so a run resumed at step k draws
exactly what an uninterrupted run would have drawn: `--resume` restores the weights, the EMA,
the optimizer and the step, and the random state follows from the step.
"""

from __future__ import annotations

import csv
import hashlib
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from diffusers import DDPMScheduler
from diffusers.training_utils import EMAModel
from torch import nn

from study.imaging.manifest import read_manifest
from synth.checkpoint import (
    STATE_FILE,
    load_training_state,
    save_checkpoint,
    save_training_state,
)
from synth.contract import CHECKPOINT_CONFIG, DEFAULT_PRESET, TrainingPatients, TrainRequest
from synth.data import BatchSampler, TrainingSet, training_set_from_manifest
from synth.errors import SynthError
from synth.model import ModelConfig, build_network, model_config, parameter_count
from synth.progress import Progress, SilentProgress
from synth.text import Vocabulary

LOSS_FILE = "loss.csv"
LOSS_COLUMNS = ("step", "loss", "lr", "elapsed_s")
# The options of `python -m synth train` are the contract's; these are fixed.
WEIGHT_DECAY = 0.01
GRAD_CLIP = 1.0
# The EMA's decay warms up as 1 - k^(-2/3) after k updates (diffusers' EMAModel), so that early
# weights are forgotten quickly, up to this.
EMA_MAX_DECAY = 0.9999
PROMPT_DROPOUT = 0.1
CONDITION_DROPOUT = 0.2
UNKNOWN_WORD_RATE = 0.05
# The name synth.demo_assets and notebooks train with.
TrainConfig = TrainRequest


def ema_weights(module: nn.Module, ema: EMAModel) -> dict[str, torch.Tensor]:
    """`module`'s state dict with the averaged parameters in place of the raw ones."""
    names = [name for name, _ in module.named_parameters()]
    averaged = dict(zip(names, ema.shadow_params, strict=True))
    return {name: averaged.get(name, tensor) for name, tensor in module.state_dict().items()}


def load_ema(ema: EMAModel, saved: dict[str, Any]) -> None:
    """Restore the EMA saved with a training state; SynthError when it does not fit the model."""
    shadow = saved.get("shadow_params")
    if shadow is None or [p.shape for p in shadow] != [p.shape for p in ema.shadow_params]:
        raise SynthError(
            "the saved EMA does not match the model (or an older version saved it): "
            "train into a new --out"
        )
    ema.load_state_dict(saved)


def step_seed(seed: int, process: int, step: int) -> int:
    digest = hashlib.sha256(f"{seed}/{process}/{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def learning_rate(config: TrainRequest, step: int) -> float:
    """Linear warm-up, then constant: independent of --steps, so chunks join seamlessly."""
    if config.warmup_steps <= 0:
        return config.lr
    return config.lr * min(1.0, (step + 1) / config.warmup_steps)


def resolve_device(device: str | None) -> str:
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise SynthError(f"--device must be cpu or cuda, not {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise SynthError("--device cuda: no CUDA device is available here; use --device cpu")
    return device


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()})"


def _resolve(given: Any, saved: Any, fallback: Any, name: str) -> Any:
    if saved is None:
        return fallback if given is None else given
    if given is not None and given != saved:
        raise SynthError(
            f"--{name} {given} differs from the run being resumed ({saved}): "
            f"leave it out, or train into a new --out"
        )
    return saved


def _any_process(accelerator: Accelerator, flag: bool) -> bool:
    """True when `flag` holds on any process, so that all processes stop at the same step."""
    if accelerator.num_processes == 1:
        return flag
    votes = torch.tensor(float(flag), device=accelerator.device)
    return bool(accelerator.reduce(votes, reduction="sum").item() > 0)


def _start_loss_log(path: Path, step: int) -> None:
    """Keep the rows up to `step` (a killed run may have logged past its last save)."""
    rows: list[list[str]] = []
    if path.is_file():
        with path.open(newline="") as stream:
            rows = [row for row in list(csv.reader(stream))[1:] if row and int(row[0]) <= step]
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(LOSS_COLUMNS)
        writer.writerows(rows)


def train(
    config: TrainRequest,
    training_set: TrainingSet | None = None,
    progress: Progress | None = None,
) -> Path:
    """Train (or, with `config.resume`, continue) and return the checkpoint folder.

    `training_set` replaces `config.manifest` (tests, notebooks). The checkpoint records the
    patients of the manifest's images (`TrainingPatients`), so that a test of its images can
    refuse to test on them; trained on a `training_set`, it records none. Training stops at
    `config.steps`, or earlier once `config.max_minutes` have passed in this run; either way
    the last state is saved, and running again with `resume` continues from it.
    """
    progress = progress or SilentProgress()
    out = config.out
    device = resolve_device(config.device)
    has_checkpoint = (out / CHECKPOINT_CONFIG).exists()
    state = load_training_state(out) if config.resume else None
    if config.resume and state is None and has_checkpoint:
        raise SynthError(
            f"{out} holds a checkpoint but not the state to resume it ({STATE_FILE}): "
            "train into a new --out"
        )
    if not config.resume and (has_checkpoint or (out / STATE_FILE).exists()):
        raise SynthError(f"{out} already holds a checkpoint: pass --resume, or choose a new --out")
    saved = state or {}
    saved_model = ModelConfig.from_dict(state["model"]) if state else None
    preset = _resolve(config.model, saved_model and saved_model.preset, DEFAULT_PRESET, "model")
    size = _resolve(config.size, saved_model and saved_model.image_size, None, "size")
    seed = _resolve(config.seed, saved.get("seed"), 0, "seed")
    if saved_model and config.mask_channel and not saved_model.mask_channel:
        raise SynthError(
            "--mask-channel: the run being resumed has no lesion-mask channel: leave it out, "
            "or train into a new --out"
        )
    network_config = saved_model or model_config(preset, size, mask_channel=config.mask_channel)
    vocabulary = Vocabulary(saved["vocabulary"]) if state else Vocabulary.from_templates()

    patients: TrainingPatients | None = None
    if training_set is None:
        if config.manifest is None:
            raise SynthError("training needs a manifest (--manifest)")
        training_set = training_set_from_manifest(config.manifest, network_config.image_size)
        patients = TrainingPatients.of(
            (row.patient_id for row in read_manifest(config.manifest)),
            salt=training_set.source_sha256,
        )
    if training_set.size != network_config.image_size:
        raise SynthError(
            f"training images are {training_set.size} px, the model is "
            f"{network_config.image_size} px"
        )
    if network_config.mask_channel and not training_set.has_masks:
        raise SynthError(
            "--mask-channel: none of the training slices has a lesion mask (the manifest's "
            "mask column is empty); give masks, or train without --mask-channel"
        )
    if state and state["source_sha256"] != training_set.source_sha256:
        raise SynthError(
            "the training data differ from those the run being resumed started with: "
            "train into a new --out"
        )

    accelerator = Accelerator(
        cpu=device == "cpu", mixed_precision="bf16" if device == "cuda" else "no"
    )
    if accelerator.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    network = build_network(network_config, len(vocabulary), seed).to(accelerator.device)
    ema = EMAModel(
        network.parameters(), decay=EMA_MAX_DECAY, use_ema_warmup=True, power=2 / 3, foreach=True
    )
    optimizer = torch.optim.AdamW(
        network.parameters(),
        lr=config.lr,
        weight_decay=WEIGHT_DECAY,
        fused=accelerator.device.type == "cuda",
        foreach=accelerator.device.type != "cuda",
    )
    step, seconds_before = 0, 0.0
    if state:
        network.load_state_dict(state["network"])
        load_ema(ema, state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        step, seconds_before = int(state["step"]), float(state["training_seconds"])
    ema.to(device=accelerator.device)
    if config.compile:
        network.unet.compile()
    network, optimizer = accelerator.prepare(network, optimizer)
    unwrapped = accelerator.unwrap_model(network)

    scheduler = DDPMScheduler(
        num_train_timesteps=network_config.num_train_timesteps,
        beta_schedule=network_config.beta_schedule,
        prediction_type=network_config.prediction_type,
    )
    sampler = BatchSampler(
        training_set,
        vocabulary,
        network_config.max_tokens,
        accelerator.device,
        prompt_dropout=PROMPT_DROPOUT,
        condition_dropout=CONDITION_DROPOUT,
        unknown_word_rate=UNKNOWN_WORD_RATE,
        lesion_share=config.lesion_share,
        mask_dropout=config.mask_dropout if network_config.mask_channel else None,
    )
    generator = torch.Generator(device=accelerator.device)
    out.mkdir(parents=True, exist_ok=True)
    loss_path = out / LOSS_FILE
    if accelerator.is_main_process:
        _start_loss_log(loss_path, step)

    started = time.perf_counter()
    deadline = None if config.max_minutes is None else started + 60 * config.max_minutes
    loss_sum = torch.zeros((), device=accelerator.device)
    losses_summed = 0
    last_loss = float("nan")
    sha256 = ""
    saved_step = -1

    def save() -> None:
        nonlocal sha256, saved_step
        saved_step = step
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            seconds = seconds_before + time.perf_counter() - started
            save_training_state(
                out,
                {
                    "step": step,
                    "training_seconds": seconds,
                    "seed": seed,
                    "model": network_config.to_dict(),
                    "vocabulary": list(vocabulary.tokens),
                    "source_sha256": training_set.source_sha256,
                    "network": {k: v.cpu() for k, v in unwrapped.state_dict().items()},
                    "ema": ema.state_dict()
                    | {"shadow_params": [p.cpu() for p in ema.shadow_params]},
                    "optimizer": optimizer.state_dict(),
                },
            )
            provenance = {
                "training_manifest_sha256": training_set.source_sha256,
                "steps": step,
                "target_steps": config.steps,
                "images": len(training_set),
                "batch": config.batch,
                "processes": accelerator.num_processes,
                "lr": config.lr,
                "seed": seed,
                "prompt_dropout": PROMPT_DROPOUT,
                "condition_dropout": CONDITION_DROPOUT,
                "lesion_share": config.lesion_share,
                "mask_dropout": config.mask_dropout if network_config.mask_channel else None,
                "masked_images": int(training_set.mask_known.sum()),
                "ema_updates": ema.optimization_step,
                "parameters": parameter_count(unwrapped),
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "device": describe_device(accelerator.device),
                "mixed_precision": accelerator.mixed_precision,
                "training_seconds": round(seconds, 3),
            }
            if patients is not None:
                provenance["patients"] = patients.to_json()
            sha256 = save_checkpoint(
                out,
                ema_weights(unwrapped, ema),
                network_config,
                vocabulary,
                provenance,
                half=config.half,
            )
        accelerator.wait_for_everyone()

    network.train()
    while step < config.steps:
        generator.manual_seed(step_seed(seed, accelerator.process_index, step))
        batch = sampler.sample(config.batch, generator)
        noise = torch.randn(batch.images.shape, generator=generator, device=accelerator.device)
        timesteps = torch.randint(
            0,
            network_config.num_train_timesteps,
            (config.batch,),
            generator=generator,
            device=accelerator.device,
        )
        noisy = scheduler.add_noise(batch.images, noise, timesteps)
        target = scheduler.get_velocity(batch.images, noise, timesteps)
        lr = learning_rate(config, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        masks = (batch.lesion_mask, batch.lesion_mask_known) if network_config.mask_channel else ()
        prediction = network(
            noisy, timesteps, batch.token_ids, batch.condition, batch.condition_mask, *masks
        )
        loss = F.mse_loss(prediction.float(), target)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(network.parameters(), GRAD_CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.step(unwrapped.parameters())
        step += 1
        loss_sum += loss.detach()
        losses_summed += 1

        out_of_time = (
            deadline is not None
            and step % config.log_every == 0
            and _any_process(accelerator, time.perf_counter() >= deadline)
        )
        finishing = step == config.steps or out_of_time
        if step % config.log_every == 0 or finishing:
            last_loss = (loss_sum / losses_summed).item()
            loss_sum.zero_()
            losses_summed = 0
            if last_loss != last_loss or abs(last_loss) == float("inf"):
                raise SynthError(f"the loss became {last_loss} at step {step}: lower --lr")
            if accelerator.is_main_process:
                elapsed = seconds_before + time.perf_counter() - started
                with loss_path.open("a", newline="") as stream:
                    csv.writer(stream).writerow(
                        [step, f"{last_loss:.6g}", f"{lr:.6g}", f"{elapsed:.3f}"]
                    )
                progress.update(step, loss=last_loss, lr=lr)
        if step % config.save_every == 0 or finishing:
            save()
        if out_of_time:
            break

    if saved_step != step:
        save()
    if accelerator.is_main_process:
        progress.finish(step=step, checkpoint=str(out), checkpoint_sha256=sha256, loss=last_loss)
    return out
