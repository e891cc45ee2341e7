"""A trained generator on disk, and the training state that `--resume` continues from.

Layout of a checkpoint folder:
    config.json                 model config, weight dtype, training provenance (read, without
                                torch, by `synth.contract.read_checkpoint_info`)
    vocab.json                  the prompt vocabulary
    unet.safetensors            EMA weights of the UNet (split into `unet-00001-of-0000N...`
    text_encoder.safetensors    shards above 12 MiB, so every file fits a 16 MiB transfer)
    resume/state.pt             raw weights, EMA, optimizer and step: training only
    loss.csv                    step, loss, lr, elapsed_s

`checkpoint_sha256` hashes the weight files alone: it names the weights that made an image.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from synth.contract import CHECKPOINT_CONFIG, CHECKPOINT_FORMAT
from synth.contract import read_checkpoint_config as read_config
from synth.errors import SynthError
from synth.model import ConditionalUNet, ModelConfig
from synth.text import Vocabulary

VOCAB_FILE = "vocab.json"
STATE_FILE = Path("resume") / "state.pt"
COMPONENTS = ("unet", "text_encoder")
MAX_SHARD_BYTES = 12 * 2**20
GENERATOR_NAME = "vtt-synth-diffusion"


@dataclass
class Generator:
    """A trained generator ready to sample: network in eval mode, vocabulary, provenance."""

    network: ConditionalUNet
    vocabulary: Vocabulary
    config: ModelConfig
    sha256: str
    training: dict[str, Any] = field(default_factory=dict)
    directory: Path | None = None

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    @property
    def name(self) -> str:
        """The `generator` column of the manifests it writes, e.g. vtt-synth-diffusion/default."""
        return f"{GENERATOR_NAME}/{self.config.preset}"


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    write(temporary)
    os.replace(temporary, path)


def _shards(tensors: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name in sorted(tensors):
        nbytes = tensors[name].numel() * tensors[name].element_size()
        if shards[-1] and size + nbytes > MAX_SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][name] = tensors[name]
        size += nbytes
    return shards


def weight_files(directory: Path) -> list[Path]:
    """The checkpoint's safetensors files, sorted by name."""
    return sorted(
        path
        for component in COMPONENTS
        for pattern in (f"{component}.safetensors", f"{component}-*-of-*.safetensors")
        for path in directory.glob(pattern)
    )


def checkpoint_sha256(directory: Path | str) -> str:
    """sha256 over the weight files, each as its name, a NUL byte, then its bytes, by name."""
    files = weight_files(Path(directory))
    if not files:
        raise SynthError(f"{directory}: no weight files (*.safetensors); is it a checkpoint?")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as stream:
            for block in iter(lambda stream=stream: stream.read(2**20), b""):
                digest.update(block)
    return digest.hexdigest()


def find_checkpoints(folder: Path) -> dict[str, Path]:
    """The checkpoints in `folder` (itself one, or its subfolders, links followed), by the
    sha256 that the images they made carry (`checkpoint_sha256`)."""
    if not folder.is_dir():
        raise SynthError(f"{folder} is not a folder of checkpoints")
    candidates = [folder, *sorted(path for path in folder.iterdir() if path.is_dir())]
    return {
        checkpoint_sha256(path): path for path in candidates if (path / CHECKPOINT_CONFIG).is_file()
    }


def save_checkpoint(
    directory: Path,
    weights: dict[str, torch.Tensor],
    config: ModelConfig,
    vocabulary: Vocabulary,
    training: dict[str, Any],
    *,
    half: bool = False,
) -> str:
    """Write `weights` (a `ConditionalUNet` state dict) as a checkpoint; return its sha256.

    `half` stores float16 weights (half the size; sampling still runs in float32 on the CPU).
    """
    unknown = [name for name in weights if not name.startswith(tuple(f"{c}." for c in COMPONENTS))]
    if unknown:
        raise SynthError(f"weights outside {COMPONENTS}: {', '.join(unknown[:5])}")
    directory.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if half else torch.float32
    written = set()
    for component in COMPONENTS:
        prefix = f"{component}."
        tensors = {
            name.removeprefix(prefix): tensor.detach().to("cpu", dtype).contiguous()
            for name, tensor in weights.items()
            if name.startswith(prefix)
        }
        shards = _shards(tensors)
        for number, shard in enumerate(shards, start=1):
            name = (
                f"{component}.safetensors"
                if len(shards) == 1
                else f"{component}-{number:05d}-of-{len(shards):05d}.safetensors"
            )
            _write_atomically(
                directory / name,
                lambda path, shard=shard: save_file(shard, str(path), metadata={"format": "pt"}),
            )
            written.add(name)
    for stale in weight_files(directory):
        if stale.name not in written:
            stale.unlink()
    document = {
        "format": CHECKPOINT_FORMAT,
        "model": config.to_dict(),
        "weights_dtype": str(dtype).removeprefix("torch."),
        "training": training,
    }
    _write_atomically(
        directory / CHECKPOINT_CONFIG,
        lambda path: path.write_text(json.dumps(document, indent=2) + "\n"),
    )
    _write_atomically(directory / VOCAB_FILE, vocabulary.save)
    return checkpoint_sha256(directory)


def load_weights(directory: Path) -> dict[str, torch.Tensor]:
    weights: dict[str, torch.Tensor] = {}
    for path in weight_files(directory):
        component = path.name.split(".")[0].split("-")[0]
        for name, tensor in load_file(str(path)).items():
            weights[f"{component}.{name}"] = tensor.float()
    return weights


def load_checkpoint(directory: Path | str, device: str | torch.device = "cpu") -> Generator:
    """Load a checkpoint in float32 on `device`, in eval mode."""
    directory = Path(directory)
    document = read_config(directory)
    config = ModelConfig.from_dict(document["model"])
    vocabulary = Vocabulary.load(directory / VOCAB_FILE)
    network = ConditionalUNet(config, len(vocabulary))
    try:
        network.load_state_dict(load_weights(directory), strict=True)
    except RuntimeError as error:
        raise SynthError(f"{directory}: weights do not match config.json ({error})") from error
    network.to(device).eval().requires_grad_(False)
    return Generator(
        network=network,
        vocabulary=vocabulary,
        config=config,
        sha256=checkpoint_sha256(directory),
        training=document.get("training", {}),
        directory=directory,
    )


def save_training_state(directory: Path, state: dict[str, Any]) -> None:
    path = directory / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, lambda temporary: torch.save(state, temporary))


def load_training_state(directory: Path) -> dict[str, Any] | None:
    """The state saved by the last training run in `directory`, or None if there is none."""
    path = directory / STATE_FILE
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, ValueError) as error:
        raise SynthError(f"{path}: unreadable training state ({error})") from error
