"""`python -m synth demo-assets`: rebuild the bundled demo generator and demo images."""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo-assets",
        help="rebuild the bundled demo generator and demo images",
        description="Train the default model on a phantom cohort (resumable), then write the "
        "float16 demo checkpoint, held-out phantom images and the generator's images.",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "demo")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "demo")
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), help="default: cuda when available, else cpu"
    )
    parser.add_argument("--model", default="default", help="model preset (default: default)")
    parser.add_argument("--size", type=int, default=128, help="image size in pixels")
    parser.add_argument("--steps", type=int, default=3_700, help="training steps")
    parser.add_argument("--batch", type=int, default=128, help="training batch size")
    parser.add_argument("--lr", type=float, default=3e-4, help="AdamW learning rate")
    parser.add_argument("--warmup", type=int, default=500, help="linear warm-up steps")
    parser.add_argument(
        "--lesion-share",
        type=float,
        help="share of lesion slices in each training batch (default: as in the data)",
    )
    parser.add_argument("--train-patients", type=int, default=400)
    parser.add_argument("--demo-patients", type=int, default=8)
    parser.add_argument("--per-group", type=int, default=6, help="images per prompt group")
    parser.add_argument(
        "--student-steps", type=int, default=4, help="sampling steps of the distilled student"
    )
    parser.add_argument(
        "--distill-trajectories", type=int, default=4096, help="teacher samples to distil from"
    )
    parser.add_argument(
        "--distill-steps", type=int, default=1300, help="training steps of the student"
    )
    parser.add_argument(
        "--max-minutes", type=float, help="pause training after this long (run again to resume)"
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the UNet (faster on a GPU)"
    )
    parser.add_argument("--progress", choices=("tqdm", "jsonl"), default="tqdm")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: torch and diffusers take seconds to load, and every other command of
    # `python -m synth` would pay for them at start.
    from synth.demo_assets import DemoAssetsPlan, build_demo_assets
    from synth.train import resolve_device

    plan = DemoAssetsPlan(
        out=args.out,
        work=args.work,
        device=resolve_device(args.device),
        model=args.model,
        steps=args.steps,
        size=args.size,
        batch=args.batch,
        lr=args.lr,
        warmup=args.warmup,
        lesion_share=args.lesion_share,
        train_patients=args.train_patients,
        demo_patients=args.demo_patients,
        per_group=args.per_group,
        student_steps=args.student_steps,
        distill_trajectories=args.distill_trajectories,
        distill_steps=args.distill_steps,
        max_minutes=args.max_minutes,
        compile=args.compile,
        progress=args.progress,
    )
    if build_demo_assets(plan):
        print(f"demo assets written to {plan.out}")
    else:
        print(f"training paused in {plan.work / 'checkpoint'}: run the same command to go on")
    return 0
