"""Sampling speed of the conditional diffusion model: images per second.

    python benchmarks/bench_sample.py --checkpoint DIR --device cuda --batch 256
    python benchmarks/bench_sample.py --model default --device cpu --steps 2
    python benchmarks/bench_sample.py --model default --device cuda --batch 256 --compile

Without --checkpoint a freshly initialised preset is timed (speed does not depend on the
weights). On CUDA the network runs under bf16 autocast on --batch images per call; on the CPU
in float32 one image at a time (see `synth.sample.sample_images`). The first call (warm-up,
and compilation with --compile) is reported apart. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from synth.checkpoint import Generator, load_checkpoint
from synth.model import build_network, model_config, parameter_count
from synth.sample import DEFAULT_STEPS, sample_images
from synth.text import Vocabulary
from synth.train import describe_device, resolve_device

PROMPT = "A T2 image of a prostate with a lesion"


def fresh_generator(preset: str, device: str) -> Generator:
    vocabulary = Vocabulary.from_templates()
    config = model_config(preset)
    network = build_network(config, len(vocabulary), seed=0).to(device).eval()
    network.requires_grad_(False)
    return Generator(network=network, vocabulary=vocabulary, config=config, sha256="")


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", help="checkpoint folder (default: a fresh --model)")
    source.add_argument("--model", choices=("tiny", "small", "default"), default="default")
    parser.add_argument("--device", choices=("cpu", "cuda"))
    parser.add_argument("--batch", type=int, default=1, help="images per network call (CUDA)")
    parser.add_argument("--images", type=int, help="images per timed call (default: --batch)")
    parser.add_argument("--sampler", choices=tuple(DEFAULT_STEPS), default="dpmpp")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the warm-up")
    parser.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet")
    parser.add_argument(
        "--compile-mode",
        choices=("default", "reduce-overhead", "max-autotune"),
        default="default",
        help="torch.compile mode (reduce-overhead: CUDA graphs)",
    )
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(resolve_device(args.device))
    if args.checkpoint:
        generator = load_checkpoint(args.checkpoint, device)
    else:
        generator = fresh_generator(args.model, device.type)
    if args.compile:
        generator.network.unet.compile(mode=args.compile_mode)
    images = args.images or args.batch
    prompts = [PROMPT] * images

    def run(first_seed: int) -> float:
        _synchronize(device)
        started = time.perf_counter()
        sample_images(
            generator,
            prompts,
            list(range(first_seed, first_seed + images)),
            sampler=args.sampler,
            steps=args.steps,
            guidance=args.guidance,
            batch_size=args.batch,
            device=device,
        )
        _synchronize(device)
        return time.perf_counter() - started

    first_call_s = run(0)
    seconds = min(run(images * (repeat + 1)) for repeat in range(args.repeats))
    guided = args.guidance != 1
    result = {
        "model": generator.config.preset,
        "checkpoint": args.checkpoint,
        "parameters": parameter_count(generator.network),
        "size": generator.config.image_size,
        "device": describe_device(device),
        "precision": "bf16 autocast" if device.type == "cuda" else "float32",
        "threads": torch.get_num_threads(),
        "compiled": args.compile and args.compile_mode,
        "sampler": args.sampler,
        "steps": args.steps,
        "guidance": args.guidance,
        "batch": args.batch if device.type == "cuda" else 1,
        "images": images,
        "first_call_s": round(first_call_s, 3),
        "best_call_s": round(seconds, 3),
        "images_per_s": round(images / seconds, 3),
        "ms_per_image": round(1000 * seconds / images, 2),
        "s_per_step_per_image": round(seconds / images / args.steps, 4),
        "classifier_free_guidance": guided,
        "torch": torch.__version__,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
