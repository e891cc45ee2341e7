"""The seed study's synthetic images, as generator requests.

The seed study read 32 T2W and 32 ADC slices and 32 T2W-DW pairs, each block half synthetic
and half with lesions, its synthetic DW images made from synthetic T2W ones. With the held-out
real images beside them, that needs 8 synthetic images per sequence and lesion status for each
block of singles, and for the pairs 8 T2W per lesion status made from the prompt and one DWI
made from each of them (`--condition-manifest`, as `study.jobs.generate` makes paired images:
the DWI takes its T2W's pair key, so the two form one case). The T2W of the pairs are made apart
from the single T2W, so that the study's paired block and its T2W block never compete for them.
Every image has a seed of its own (the runs take consecutive seeds), so no two share a pair key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from study.imaging.types import Lesion, Sequence
from synth.contract import Device, SampleRequest, prompt_for

LESIONS = (Lesion.YES, Lesion.NO)
MANIFEST = "manifest.csv"


@dataclass(frozen=True)
class SampleRun:
    """One `synth sample` run: `n` images of a sequence and lesion status, each made from an
    image of the run `condition` when given (n per conditioning image)."""

    name: str
    sequence: Sequence
    lesion: Lesion
    n: int
    condition: str | None = None


def seed_runs(per_cell: int) -> tuple[SampleRun, ...]:
    """The runs that make the seed study's synthetic images, conditioning runs first."""
    runs = [
        SampleRun(f"{sequence.value.lower()}-{_word(lesion)}", sequence, lesion, per_cell)
        for sequence in (Sequence.T2W, Sequence.ADC)
        for lesion in LESIONS
    ]
    for lesion in LESIONS:
        t2w = f"pair-t2w-{_word(lesion)}"
        runs.append(SampleRun(t2w, Sequence.T2W, lesion, per_cell))
        runs.append(SampleRun(f"pair-dwi-{_word(lesion)}", Sequence.DWI, lesion, 1, t2w))
    return tuple(runs)


def _word(lesion: Lesion) -> str:
    return "lesion" if lesion == Lesion.YES else "no-lesion"


def images_of(runs: tuple[SampleRun, ...]) -> dict[str, int]:
    """How many images each run makes."""
    made: dict[str, int] = {}
    for run in runs:
        made[run.name] = run.n * (made[run.condition] if run.condition else 1)
    return made


def sample_requests(
    runs: tuple[SampleRun, ...],
    *,
    checkpoint: Path,
    out: Path,
    seed: int,
    steps: int | None,
    device: Device | None,
) -> list[SampleRequest]:
    """The generator's request of each run, writing into `out`/<run name>/."""
    made = images_of(runs)
    requests = []
    for run in runs:
        requests.append(
            SampleRequest(
                checkpoint=checkpoint,
                prompt=prompt_for(run.sequence, run.lesion),
                n=run.n,
                out=out / run.name,
                seed=seed,
                steps=steps,
                device=device,
                condition_manifest=out / run.condition / MANIFEST if run.condition else None,
                sequence=run.sequence,
                lesion=run.lesion,
                progress="jsonl",
            )
        )
        seed += made[run.name]
    return requests
