"""The generator's contract: what `python -m synth` accepts and writes, each thing declared once.

Every command of the generator takes one request, a frozen dataclass declared here whose fields
carry their default, limits and help (`option`). The command line is built from these
declarations (`add_options`, `request_from_args`), the app's background jobs build their command
lines with `Request.to_args()`, and the app's pages build their forms from `option_spec`. Beside
the requests: the samplers and model presets, the words of prompts (`prompt_for`), how to read a
checkpoint's config.json (`read_checkpoint_info`), and the progress lines of `--progress jsonl`
(`format_progress_event`, `parse_progress_line`).

>>> request = SampleRequest(checkpoint=Path("ckpt"), prompt="ADC, no lesion", out=Path("out"))
>>> request.to_args()[:5]
['sample', '--checkpoint', 'ckpt', '--prompt', 'ADC, no lesion']

This is the only module of `synth` that `study` imports, so it imports nothing heavy: the
standard library, `study.imaging.types` and `synth.errors`.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar, get_args, get_origin

from study.imaging.types import Lesion, Sequence, parse_lesion, parse_sequence
from synth.errors import SynthError

# --- samplers, presets, devices ---------------------------------------------------------------

Sampler = Literal["ddim", "dpmpp"]
SAMPLERS: tuple[Sampler, ...] = get_args(Sampler)
# Steps a sampler runs unless told otherwise: the second-order DPM-Solver++ needs fewer.
DEFAULT_STEPS: Mapping[Sampler, int] = {"ddim": 50, "dpmpp": 20}
DEFAULT_SAMPLER: Sampler = "dpmpp"
DEFAULT_GUIDANCE = 3.0

Preset = Literal["tiny", "small", "default"]
PRESETS: Mapping[Preset, str] = {
    "tiny": "53 thousand parameters at 32 px, for tests",
    "small": "5.7 million parameters at 64 px",
    "default": "22.6 million parameters at 128 px, the bundled demo generator's",
}
DEFAULT_PRESET: Preset = "default"
# Image sizes a model can be trained at (each preset also needs a multiple of 2^(levels - 1)).
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 256

Device = Literal["cpu", "cuda"]
ProgressKind = Literal["tqdm", "jsonl"]
PhantomLayout = Literal["vtt", "picai"]
_ROOT = Path(__file__).resolve().parent.parent

# --- prompts ----------------------------------------------------------------------------------

# What the text encoder learns to read: every pattern with every name of a sequence and every
# phrase of a lesion status (synth.text.prompt_templates).
SEQUENCE_NAMES: Mapping[Sequence, tuple[str, ...]] = {
    Sequence.T2W: ("T2", "T2-weighted", "T2W", "T2 weighted"),
    Sequence.ADC: ("ADC", "ADC map", "apparent diffusion coefficient"),
    Sequence.DWI: ("DWI", "diffusion-weighted", "high-b DWI", "high b-value diffusion"),
    Sequence.OTHER: ("MR", "MRI"),
}
LESION_PHRASES: Mapping[Lesion, tuple[str, ...]] = {
    Lesion.YES: (
        "with a lesion",
        "with a tumour",
        "with a tumor",
        "with cancer",
        "with a suspicious lesion",
        "with a cancerous lesion",
        "showing a lesion",
        "containing a tumour",
    ),
    Lesion.NO: (
        "with no lesion",
        "without lesion",
        "without a tumour",
        "without cancer",
        "free of lesions",
        "with no cancer",
        "with lesions absent",
        "that is healthy",
    ),
    Lesion.UNKNOWN: ("",),
}
PROMPT_PATTERNS = (
    "{article} {sequence} image of a prostate {lesion}",
    "{sequence} image of a prostate {lesion}",
    "Image of {sequence} prostate {lesion}",
    "An axial {sequence} slice of the prostate {lesion}",
    "{sequence} MR image of a prostate {lesion}",
    "Prostate {sequence} MRI {lesion}",
    "Axial {sequence} prostate image {lesion}",
    "{article} {sequence} scan of the prostate gland {lesion}",
)
# The words the app fills into its prompt template, each one the encoder learned.
SEQUENCE_WORDS: Mapping[Sequence, str] = {s: names[0] for s, names in SEQUENCE_NAMES.items()}
LESION_WORDS: Mapping[Lesion, str] = {
    Lesion.YES: "with a lesion",
    Lesion.NO: "without lesion",
    Lesion.UNKNOWN: "",
}
PROMPT_TEMPLATE = "A {sequence} image of a prostate {lesion}"


def prompt_for(sequence: Sequence, lesion: Lesion, template: str = PROMPT_TEMPLATE) -> str:
    """`template` with the words of `sequence` and `lesion` filled in.

    >>> prompt_for(Sequence.ADC, Lesion.NO)
    'A ADC image of a prostate without lesion'
    """
    try:
        text = template.format(sequence=SEQUENCE_WORDS[sequence], lesion=LESION_WORDS[lesion])
    except (KeyError, IndexError, ValueError) as error:
        raise SynthError(
            f"prompt template {template!r}: only {{sequence}} and {{lesion}} may be filled in"
        ) from error
    return " ".join(text.split())


# --- options ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """What a request's field declares beside its type and default.

    `min`/`max` are inclusive limits, `gt`/`lt` exclusive ones. `flag` defaults to the field's
    name as `--words-with-dashes`. `required` asks the command line for a value that Python
    callers may leave out (None), e.g. a training manifest where they pass the images instead.
    """

    help: str
    flag: str | None = None
    metavar: str | None = None
    min: float | None = None
    max: float | None = None
    gt: float | None = None
    lt: float | None = None
    required: bool = False


def option(help: str, **declared: Any) -> dict[str, Option]:
    """The metadata of a request's field: `field(default=..., metadata=option(...))`; a field
    without a default is a required option."""
    return {"option": Option(help=help, **declared)}


@dataclass(frozen=True)
class OptionSpec:
    """Everything one option of a request declares: what forms and parsers are built from.

    `type` is the value's type (int, float, str, bool, Path, Sequence or Lesion); `choices` the
    values of a `Literal` type; `default` None where there is none or it is None.
    """

    name: str
    flag: str
    type: type
    choices: tuple[Any, ...]
    default: Any
    required: bool
    nullable: bool
    help: str
    metavar: str | None
    min: float | None
    max: float | None
    gt: float | None
    lt: float | None

    @property
    def help_text(self) -> str:
        """The help with the default, as the command line shows it."""
        if self.default is None or self.type is bool:
            return self.help
        return f"{self.help} (default: {_text(self.default)})"

    def limits_text(self) -> str:
        """E.g. 'at least 1', 'positive', 'from 32 to 256', 'in (0, 1)'; '' without limits."""
        low = self.min if self.min is not None else self.gt
        high = self.max if self.max is not None else self.lt
        if low is not None and high is not None:
            if self.min is not None and self.max is not None:
                return f"from {_text(low)} to {_text(high)}"
            left, right = "[" if self.min is not None else "(", "]" if self.max is not None else ")"
            return f"in {left}{_text(low)}, {_text(high)}{right}"
        if self.min is not None:
            return f"at least {_text(self.min)}"
        if self.gt is not None:
            return "positive" if self.gt == 0 else f"more than {_text(self.gt)}"
        if self.max is not None:
            return f"at most {_text(self.max)}"
        return "" if self.lt is None else f"less than {_text(self.lt)}"

    def check(self, value: Any) -> None:
        """SynthError naming the option when `value` is not one it takes."""
        if value is None:
            if not self.nullable:
                raise SynthError(f"{self.flag} is required")
            return
        number = self.type in (int, float)
        fits = isinstance(value, (int, float) if self.type is float else self.type)
        if not fits or (number and isinstance(value, bool)):
            raise SynthError(f"{self.flag} takes {self.type.__name__} values, not {value!r}")
        if self.choices and value not in self.choices:
            allowed = ", ".join(_text(choice) for choice in self.choices)
            raise SynthError(f"{self.flag} must be one of {allowed}, not {_text(value)}")
        if number and not (
            math.isfinite(value)
            and (self.min is None or value >= self.min)
            and (self.max is None or value <= self.max)
            and (self.gt is None or value > self.gt)
            and (self.lt is None or value < self.lt)
        ):
            limits = self.limits_text() or "finite"
            raise SynthError(f"{self.flag} must be {limits}, not {_text(value)}")


def _text(value: Any) -> str:
    """A value as the command line spells it (reading it back gives the same value)."""
    if isinstance(value, Lesion):
        return value.value or "unknown"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


@functools.cache
def option_specs(request: type) -> tuple[OptionSpec, ...]:
    """The options of a request (or settings) class, in field order."""
    hints = typing.get_type_hints(request)
    specs = []
    for item in fields(request):
        declared: Option = item.metadata["option"]
        value_type, nullable = hints[item.name], False
        if get_origin(value_type) in (typing.Union, types.UnionType):
            others = [t for t in get_args(value_type) if t is not type(None)]
            value_type, nullable = others[0], len(others) < len(get_args(value_type))
        choices: tuple[Any, ...] = ()
        if get_origin(value_type) is Literal:
            choices = get_args(value_type)
            value_type = type(choices[0])
        has_default = item.default is not MISSING
        specs.append(
            OptionSpec(
                name=item.name,
                flag=declared.flag or f"--{item.name.replace('_', '-')}",
                type=value_type,
                choices=choices,
                default=item.default if has_default else None,
                required=declared.required or not has_default,
                nullable=nullable,
                help=declared.help,
                metavar=declared.metavar,
                min=declared.min,
                max=declared.max,
                gt=declared.gt,
                lt=declared.lt,
            )
        )
    return tuple(specs)


def option_spec(request: type, name: str) -> OptionSpec:
    """One option of a request (or settings) class, by field name."""
    for spec in option_specs(request):
        if spec.name == name:
            return spec
    raise KeyError(f"{request.__name__} has no option {name!r}")


@dataclass(frozen=True, kw_only=True)
class Options:
    """Checks every option's value against its declaration when made."""

    def __post_init__(self) -> None:
        for spec in option_specs(type(self)):
            spec.check(getattr(self, spec.name))


@dataclass(frozen=True, kw_only=True)
class Request(Options):
    """What one command of `python -m synth` is asked to do."""

    command: ClassVar[str]

    def command_line(self) -> list[str]:
        """The whole command that runs this request: `python -m synth` and `to_args()`, with
        the interpreter running now (the app's, or a worker's)."""
        return [sys.executable, "-m", "synth", *self.to_args()]

    def to_args(self) -> list[str]:
        """The command line after `python -m synth`: the command, then every option set."""
        args = [self.command]
        for spec in option_specs(type(self)):
            value = getattr(self, spec.name)
            if value is None or value is False:
                continue
            if value is True:
                args.append(spec.flag)
            elif _text(value).startswith("-"):
                # Joined, or argparse would read a prompt such as "-weighted ..." as an option.
                args.append(f"{spec.flag}={_text(value)}")
            else:
                args += [spec.flag, _text(value)]
        return args

    def to_json(self) -> dict[str, Any]:
        """The options as JSON values (paths and enumerations as text), for `from_json`."""
        return {
            spec.name: _json_value(getattr(self, spec.name)) for spec in option_specs(type(self))
        }

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> Self:
        """The request `to_json` gave `values`; options left out take their defaults."""
        specs = {spec.name: spec for spec in option_specs(cls)}
        unknown = sorted(set(values) - set(specs))
        if unknown:
            raise SynthError(f"{cls.command} has no option {', '.join(unknown)}")
        return cls(**{name: _from_json(specs[name], value) for name, value in values.items()})


def _json_value(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _from_json(spec: OptionSpec, value: Any) -> Any:
    if value is None or spec.type in (int, float, str, bool):
        return value
    return spec.type(value)


def _argument_type(spec: OptionSpec) -> Callable[[str], Any]:
    """What argparse turns an option's text into; its error message is kept."""
    parse: Callable[[str], Any] = {Sequence: parse_sequence, Lesion: parse_lesion}.get(
        spec.type, spec.type
    )

    def argument(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from error

    argument.__name__ = spec.type.__name__
    return argument


def _metavar(spec: OptionSpec) -> str | None:
    """The flag's name in capitals (--warmup: WARMUP); None where argparse shows the choices."""
    if spec.choices:
        return None
    return spec.flag.removeprefix("--").replace("-", "_").upper()


def add_options(parser: argparse.ArgumentParser, request: type[Request]) -> None:
    """Add the options of `request` to a command's parser, the required ones first; the request
    checks the limits when it is made (`request_from_args`)."""
    for spec in sorted(option_specs(request), key=lambda spec: not spec.required):
        help_text = spec.help_text.replace("%", "%%")
        if spec.type is bool:
            parser.add_argument(spec.flag, dest=spec.name, action="store_true", help=help_text)
            continue
        parser.add_argument(
            spec.flag,
            dest=spec.name,
            type=_argument_type(spec),
            choices=spec.choices or None,
            default=spec.default,
            required=spec.required,
            metavar=spec.metavar or _metavar(spec),
            help=help_text,
        )


R = TypeVar("R", bound=Request)


def request_from_args(request: type[R], args: argparse.Namespace) -> R:
    """The request that parsed command-line arguments ask for; SynthError for a bad value."""
    return request(**{spec.name: getattr(args, spec.name) for spec in option_specs(request)})


# --- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PhantomRequest(Request):
    """`python -m synth phantom`. Its limits are the phantom's own (synth.phantom checks them)."""

    command: ClassVar[str] = "phantom"
    out: Path = field(metadata=option(metavar="DIR", help="new or empty output folder"))
    patients: int = field(metadata=option(metavar="N", help="patients to simulate, 1-100000"))
    seed: int = field(
        metadata=option(metavar="S", help="patient k is the same for a seed whatever N is")
    )
    size: int = field(default=128, metadata=option(metavar="PX", help="pixels per side, 64-512"))
    slices: int = field(
        default=10, metadata=option(metavar="K", help="slices from apex to base, 3-64")
    )
    lesion_fraction: float = field(
        default=0.5, metadata=option(metavar="F", help="share of patients with a lesion, 0-1")
    )
    layout: PhantomLayout = field(
        default="vtt",
        metadata=option(
            help="vtt: NIfTI volumes, PNG slices and a manifest; picai: the public PI-CAI "
            "layout (MHA images, label volumes, marksheet) for `python -m study prepare-picai`"
        ),
    )


# With --mask-channel, the share of training slices that see "mask unknown" instead of theirs.
DEFAULT_MASK_DROPOUT = 0.3
# `synth sample --lesion-mask auto`: a lesion drawn by the phantom's lesion model.
AUTO_LESION_MASK = "auto"
# What the app offers for checkpoints with the mask channel: no mask, or `auto` ones.
LesionMasks = Literal["none", "auto"]
LESION_MASK_CHOICES: tuple[LesionMasks, ...] = get_args(LesionMasks)


@dataclass(frozen=True, kw_only=True)
class TrainSettings(Options):
    """How to train: what the app's Train page chooses. `model`, `size` and `seed` left None
    mean the preset "default" at its own size and seed 0, or, with `resume`, what the run
    started with."""

    model: Preset | None = field(
        default=None,
        metadata=option(help=f"model preset (default: {DEFAULT_PRESET}, or the resumed run's)"),
    )
    size: int | None = field(
        default=None,
        metadata=option(
            min=MIN_IMAGE_SIZE,
            max=MAX_IMAGE_SIZE,
            help="image size in pixels (default: the preset's, or the resumed run's)",
        ),
    )
    steps: int = field(default=20_000, metadata=option(min=1, help="total training steps"))
    batch: int = field(default=128, metadata=option(min=1, help="images per step and process"))
    lr: float = field(default=2e-4, metadata=option(gt=0, help="AdamW learning rate"))
    warmup_steps: int = field(
        default=500, metadata=option(min=0, flag="--warmup", help="linear warm-up steps")
    )
    lesion_share: float | None = field(
        default=None,
        metadata=option(
            gt=0,
            lt=1,
            help="share of lesion slices in each batch, e.g. 0.5 (default: as in the data)",
        ),
    )
    seed: int | None = field(
        default=None,
        metadata=option(
            min=0, help="seed of initialisation and batches (default: 0, or the resumed run's)"
        ),
    )
    mask_channel: bool = field(
        default=False,
        metadata=option(
            help="condition on lesion masks too: an input channel for the lesion outline, from "
            "the manifest's mask column (sample with --lesion-mask)"
        ),
    )
    mask_dropout: float = field(
        default=DEFAULT_MASK_DROPOUT,
        metadata=option(
            min=0,
            lt=1,
            help="with --mask-channel: share of training slices whose mask is withheld, so "
            "that sampling from the prompt alone keeps working",
        ),
    )
    save_every: int = field(
        default=1000,
        metadata=option(
            min=1, help="save every K steps (a stopped run resumes from the last save)"
        ),
    )
    log_every: int = field(default=10, metadata=option(min=1, help="log the loss every K steps"))
    max_minutes: float | None = field(
        default=None,
        metadata=option(
            gt=0, help="stop and save after this many minutes (train in chunks with --resume)"
        ),
    )
    half: bool = field(
        default=False, metadata=option(help="save float16 weights (half the size on disk)")
    )
    compile: bool = field(
        default=False,
        metadata=option(
            help="torch.compile the UNet: about 1.7x on an H100, after about 2 minutes"
        ),
    )


@dataclass(frozen=True, kw_only=True)
class TrainRequest(TrainSettings, Request):
    """`python -m synth train`: `TrainSettings` applied to a manifest, into a checkpoint folder."""

    command: ClassVar[str] = "train"
    manifest: Path | None = field(
        default=None,
        metadata=option(
            required=True, help="training manifest (CSV; Python callers may pass images instead)"
        ),
    )
    out: Path = field(metadata=option(help="checkpoint folder"))
    device: Device | None = field(
        default=None, metadata=option(help="default: cuda when available, else cpu")
    )
    resume: bool = field(
        default=False,
        metadata=option(
            help="continue from --out's last saved state (starts afresh when there is none)"
        ),
    )
    progress: ProgressKind = field(
        default="tqdm", metadata=option(help="progress bar, or JSON lines for the app")
    )

    @classmethod
    def from_settings(cls, settings: TrainSettings, **options: Any) -> Self:
        """`settings` with the other options (manifest, out, device, resume, progress)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(TrainSettings)}, **options)


@dataclass(frozen=True)
class Sampling:
    """A sampler, its number of steps and the classifier-free guidance."""

    sampler: Sampler
    steps: int
    guidance: float


DEFAULT_SAMPLING = Sampling(DEFAULT_SAMPLER, DEFAULT_STEPS[DEFAULT_SAMPLER], DEFAULT_GUIDANCE)


@dataclass(frozen=True, kw_only=True)
class SampleRequest(Request):
    """`python -m synth sample`: `n` images (per T2W row of `condition_manifest`) and their
    manifest. Sampler, steps and guidance left None are the checkpoint's own (`sampling`)."""

    command: ClassVar[str] = "sample"
    checkpoint: Path = field(metadata=option(help="checkpoint folder"))
    prompt: str = field(metadata=option(help='e.g. "A T2 image of a prostate with a lesion"'))
    n: int = field(default=1, metadata=option(min=1, help="images (per conditioning row)"))
    out: Path = field(metadata=option(help="output folder"))
    seed: int = field(default=0, metadata=option(min=0, help="image i gets seed + i"))
    sampler: Sampler | None = field(
        default=None,
        metadata=option(
            help=f"default: the checkpoint's own (a distilled student's), else {DEFAULT_SAMPLER}"
        ),
    )
    steps: int | None = field(
        default=None,
        metadata=option(
            min=1,
            help="default: the checkpoint's own, else "
            + ", ".join(f"{steps} for {sampler}" for sampler, steps in DEFAULT_STEPS.items()),
        ),
    )
    guidance: float | None = field(
        default=None,
        metadata=option(
            min=0,
            help="classifier-free guidance "
            f"(default: the checkpoint's own, else {DEFAULT_GUIDANCE:g})",
        ),
    )
    device: Device | None = field(
        default=None, metadata=option(help="default: cuda when available, else cpu")
    )
    batch: int = field(
        default=64, metadata=option(min=1, help="images per network call on CUDA (CPU: one)")
    )
    condition_manifest: Path | None = field(
        default=None,
        metadata=option(help="manifest whose T2W slices condition the generated DWI/ADC images"),
    )
    sequence: Sequence | None = field(
        default=None, metadata=option(help="T2W, ADC, DWI or other (default: from the prompt)")
    )
    lesion: Lesion | None = field(
        default=None, metadata=option(help="1, 0 or unknown (default: from the prompt)")
    )
    lesion_mask: str | None = field(
        default=None,
        metadata=option(
            metavar="FILE|auto",
            help="where the lesion is (checkpoints trained with --mask-channel): a 2D label "
            "image (PNG or NIfTI) at the output size, or 'auto' for a lesion drawn inside the "
            "gland by the phantom's lesion model (empty for a prompt without lesion); each "
            "image's mask is written to DIR/masks/ and the manifest's mask column",
        ),
    )
    progress: ProgressKind = field(
        default="tqdm", metadata=option(help="progress bar, or JSON lines for the app")
    )

    def sampling(self, own: Sampling | None) -> Sampling:
        """What to run: what was asked, else the checkpoint's `own` sampling (a distilled
        student's), else the defaults; steps follow the sampler they were made for."""
        base = own or DEFAULT_SAMPLING
        sampler = self.sampler or base.sampler
        if self.steps is not None:
            steps = self.steps
        else:
            steps = base.steps if sampler == base.sampler else DEFAULT_STEPS[sampler]
        guidance = base.guidance if self.guidance is None else self.guidance
        return Sampling(sampler, steps, guidance)


@dataclass(frozen=True, kw_only=True)
class DistillRequest(Request):
    """`python -m synth distill`: a few-step student of a trained generator."""

    command: ClassVar[str] = "distill"
    teacher: Path = field(metadata=option(help="teacher checkpoint folder"))
    manifest: Path = field(metadata=option(help="the teacher's training manifest"))
    out: Path = field(metadata=option(help="student checkpoint folder (new)"))
    student_steps: int = field(default=4, metadata=option(min=1, help="DDIM steps of the student"))
    teacher_steps: int = field(
        default=DEFAULT_STEPS["dpmpp"],
        metadata=option(min=1, help="DPM-Solver++ steps of the teacher"),
    )
    guidance: float = field(
        default=DEFAULT_GUIDANCE, metadata=option(min=0, help="the teacher's guidance")
    )
    trajectories: int = field(default=4096, metadata=option(min=1, help="teacher samples"))
    steps: int = field(default=2000, metadata=option(min=1, help="student training steps"))
    batch: int = field(default=64, metadata=option(min=1, help="student batch"))
    lr: float = field(default=3e-5, metadata=option(gt=0, help="AdamW learning rate"))
    seed: int = field(
        default=0,
        metadata=option(min=0, help="seed of the teacher's samples and the student's batches"),
    )
    device: Device | None = field(
        default=None, metadata=option(help="default: cuda when available, else cpu")
    )
    max_minutes: float | None = field(
        default=None, metadata=option(gt=0, help="stop training the student after this long in all")
    )
    progress: ProgressKind = field(
        default="tqdm", metadata=option(help="progress bar, or JSON lines for the app")
    )


@dataclass(frozen=True, kw_only=True)
class EvaluateRequest(Request):
    """`python -m synth evaluate`. Its limits are the evaluation's own (synth.evaluate checks
    them, with messages that name the combination at fault)."""

    command: ClassVar[str] = "evaluate"
    real: Path = field(metadata=option(metavar="M1", help="manifest of held-out real images"))
    synthetic: Path = field(metadata=option(metavar="M2", help="manifest of synthetic images"))
    train: Path | None = field(
        default=None,
        metadata=option(metavar="M3", help="manifest of the generator's training images"),
    )
    json: bool = field(default=False, metadata=option(help="print one JSON object"))
    scores: Path | None = field(
        default=None,
        metadata=option(
            metavar="CSV",
            help="write each image's out-of-fold classifier score (probability synthetic) here, "
            "for `python -m study add-machine`",
        ),
    )
    size: int = field(
        default=64, metadata=option(metavar="PX", help="common image size in pixels, at least 8")
    )
    lesion_size: int = field(
        default=128,
        metadata=option(metavar="PX", help="image size the lesion classifier crops from"),
    )
    lesion_field: float = field(
        default=0.5,
        metadata=option(
            metavar="SHARE",
            help="centred share of each side the lesion classifier sees, where the prostate lies "
            "(1 for the whole image)",
        ),
    )
    seed: int = field(default=0, metadata=option(metavar="S", help="seed"))
    folds: int = field(default=5, metadata=option(help="C2ST folds, at least 2"))
    epochs: int = field(default=8, metadata=option(help="training epochs of each classifier"))
    progress: ProgressKind = field(
        default="tqdm", metadata=option(help="progress bar, or JSON lines for the app")
    )


# What `python -m synth augment` trains unless told otherwise, and with --quick.
AUGMENT_EPOCHS, AUGMENT_QUICK_EPOCHS = 8, 2
AUGMENT_LESION_SIZE, AUGMENT_QUICK_LESION_SIZE = 128, 64
# The arms and the metrics of its result (the keys of its --json object).
AUGMENT_ARMS = ("real", "real+synthetic")
AUGMENT_METRICS = ("accuracy", "sensitivity", "specificity", "auc")


@dataclass(frozen=True, kw_only=True)
class AugmentRequest(Request):
    """`python -m synth augment`: does adding synthetic images to the real training images of a
    slice-level lesion classifier help it on held-out real patients? `epochs` and `lesion_size`
    left None are the defaults, or the quick ones with `quick` (`classifier_training`)."""

    command: ClassVar[str] = "augment"
    real: Path = field(
        metadata=option(
            metavar="M", help="manifest of real images with lesion labels, split into folds"
        )
    )
    synthetic: Path = field(
        metadata=option(metavar="M", help="manifest of synthetic images added to training folds")
    )
    generators: Path | None = field(
        default=None,
        metadata=option(
            metavar="DIR",
            help="the checkpoint that made --synthetic, or a folder of checkpoints (found by the "
            "manifest's checkpoint_sha256): no fold may test a patient it was trained on",
        ),
    )
    allow_unrecorded: bool = field(
        default=False,
        metadata=option(
            help="accept synthetic images whose generator's training patients cannot be checked "
            "(no checkpoint_sha256, checkpoint not found, or one that does not record them)"
        ),
    )
    folds: int = field(default=5, metadata=option(min=2, help="folds of real patients"))
    repeats: int = field(
        default=1, metadata=option(min=1, metavar="N", help="cross-validations, each its own seed")
    )
    epochs: int | None = field(
        default=None,
        metadata=option(
            min=1,
            help="passes over the real training images; both arms take as many steps (default: "
            f"{AUGMENT_EPOCHS}, {AUGMENT_QUICK_EPOCHS} with --quick)",
        ),
    )
    lesion_size: int | None = field(
        default=None,
        metadata=option(
            min=8,
            metavar="PX",
            help="image size the classifier crops from (default: "
            f"{AUGMENT_LESION_SIZE}, {AUGMENT_QUICK_LESION_SIZE} with --quick)",
        ),
    )
    lesion_field: float = field(
        default=0.5,
        metadata=option(
            gt=0,
            max=1,
            metavar="SHARE",
            help="centred share of each side the classifier sees, where the prostate lies",
        ),
    )
    seed: int = field(default=0, metadata=option(min=0, metavar="S", help="seed"))
    quick: bool = field(
        default=False,
        metadata=option(help="a smaller classifier, trained shorter: for tests and CPUs"),
    )
    json: bool = field(default=False, metadata=option(help="print one JSON object"))
    progress: ProgressKind = field(
        default="tqdm", metadata=option(help="progress bar, or JSON lines for the app")
    )

    def classifier_training(self) -> tuple[int, int]:
        """(epochs, lesion size) to train with: those asked, else the defaults of the mode."""
        epochs = AUGMENT_QUICK_EPOCHS if self.quick else AUGMENT_EPOCHS
        size = AUGMENT_QUICK_LESION_SIZE if self.quick else AUGMENT_LESION_SIZE
        return self.epochs or epochs, self.lesion_size or size


@dataclass(frozen=True, kw_only=True)
class DemoAssetsRequest(Request):
    """`python -m synth demo-assets`: rebuild the bundled demo generator and demo images."""

    command: ClassVar[str] = "demo-assets"
    out: Path = field(default=_ROOT / "data" / "demo", metadata=option(help="demo folder"))
    work: Path = field(
        default=_ROOT / "build" / "demo",
        metadata=option(help="work folder (training resumes from it)"),
    )
    device: Device | None = field(
        default=None, metadata=option(help="default: cuda when available, else cpu")
    )
    model: Preset = field(default=DEFAULT_PRESET, metadata=option(help="model preset"))
    size: int = field(
        default=128,
        metadata=option(min=MIN_IMAGE_SIZE, max=MAX_IMAGE_SIZE, help="image size in pixels"),
    )
    steps: int = field(default=3_700, metadata=option(min=1, help="training steps"))
    batch: int = field(default=128, metadata=option(min=1, help="training batch size"))
    lr: float = field(default=3e-4, metadata=option(gt=0, help="AdamW learning rate"))
    warmup: int = field(default=500, metadata=option(min=0, help="linear warm-up steps"))
    lesion_share: float | None = field(
        default=None,
        metadata=option(
            gt=0,
            lt=1,
            help="share of lesion slices in each training batch (default: as in the data)",
        ),
    )
    train_patients: int = field(
        default=400, metadata=option(min=1, help="phantom patients to train on")
    )
    demo_patients: int = field(
        default=8, metadata=option(min=1, help="held-out phantom patients of the demo")
    )
    per_group: int = field(default=6, metadata=option(min=1, help="images per prompt group"))
    student_steps: int = field(
        default=4, metadata=option(min=1, help="sampling steps of the distilled student")
    )
    distill_trajectories: int = field(
        default=4096, metadata=option(min=1, help="teacher samples to distil from")
    )
    distill_steps: int = field(
        default=1300, metadata=option(min=1, help="training steps of the student")
    )
    max_minutes: float | None = field(
        default=None,
        metadata=option(gt=0, help="pause training after this long (run again to resume)"),
    )
    compile: bool = field(
        default=False, metadata=option(help="torch.compile the UNet (faster on a GPU)")
    )
    progress: ProgressKind = field(
        default="tqdm", metadata=option(help="progress bar, or JSON lines for the app")
    )


REQUESTS: tuple[type[Request], ...] = (
    AugmentRequest,
    DemoAssetsRequest,
    DistillRequest,
    EvaluateRequest,
    PhantomRequest,
    SampleRequest,
    TrainRequest,
)

# --- checkpoints ------------------------------------------------------------------------------

CHECKPOINT_FORMAT = "vtt-synth/1"
CHECKPOINT_CONFIG = "config.json"


@dataclass(frozen=True)
class TrainingPatients:
    """The patients whose images trained a checkpoint, as config.json's `training.patients`
    records them: `{"count": N, "salt": S, "sha256": [sha256("S:<patient id>"), ...]}`, sorted.

    Digests, not ids: a checkpoint is what leaves the hospital, and an id in it would tell that
    the patient is in a prostate cancer cohort. Salted (with the training manifest's sha256), a
    digest cannot be looked up in a table made for another checkpoint, nor linked to the same
    patient's in one; but whoever can list candidate ids (short record numbers) can test each,
    so ids should be pseudonyms before training.

    >>> patients = TrainingPatients.of(["P1", "P2", ""], salt="ab")
    >>> len(patients), "P1" in patients, "P3" in patients
    (2, True, False)
    """

    salt: str
    sha256: frozenset[str]

    @staticmethod
    def digest(salt: str, patient_id: str) -> str:
        return hashlib.sha256(f"{salt}:{patient_id}".encode()).hexdigest()

    @classmethod
    def of(cls, patient_ids: Iterable[str], salt: str) -> Self:
        """The record of these patients (empty ids, those of synthetic images, left out)."""
        return cls(salt, frozenset(cls.digest(salt, p) for p in patient_ids if p))

    def __contains__(self, patient_id: object) -> bool:
        return isinstance(patient_id, str) and self.digest(self.salt, patient_id) in self.sha256

    def __len__(self) -> int:
        return len(self.sha256)

    def to_json(self) -> dict[str, Any]:
        return {"count": len(self), "salt": self.salt, "sha256": sorted(self.sha256)}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Self:
        return cls(str(value["salt"]), frozenset(str(digest) for digest in value["sha256"]))


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint's config.json says of it."""

    name: str
    path: Path
    preset: str
    image_size: int
    steps: int
    date: str
    training_manifest_sha256: str
    # The sampling a distilled student was made for; None for a trained generator.
    sampling: Sampling | None = None
    distilled_from: str = ""
    # None for a checkpoint that does not record them (trained before they were recorded, or
    # from images passed in Python rather than a manifest).
    training_patients: TrainingPatients | None = None
    # Whether the model takes a lesion mask (trained with --mask-channel; sample --lesion-mask).
    mask_channel: bool = False

    def recommended_sampling(self) -> Sampling:
        """The sampling to start from: a student's own, else the defaults."""
        return self.sampling or DEFAULT_SAMPLING


def read_checkpoint_config(directory: Path) -> dict[str, Any]:
    """The checkpoint's config.json (model, weights dtype, training provenance), checked."""
    path = directory / CHECKPOINT_CONFIG
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise SynthError(
            f"{directory} is not a checkpoint ({CHECKPOINT_CONFIG} is missing): "
            "train one with `python -m synth train --manifest M --out DIR`"
        ) from error
    except OSError as error:
        raise SynthError(f"{path}: cannot be read ({error})") from error
    except ValueError as error:
        raise SynthError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        found = document.get("format") if isinstance(document, dict) else None
        raise SynthError(f"{path}: format {found!r}, expected {CHECKPOINT_FORMAT!r}")
    return document


def read_checkpoint_info(directory: Path, name: str | None = None) -> CheckpointInfo:
    """What config.json says of the checkpoint in `directory`, named `name` (default: the
    folder's name)."""
    document = read_checkpoint_config(directory)
    model, training = document.get("model", {}), document.get("training", {})
    sampling = training.get("sampling")
    try:
        return CheckpointInfo(
            name=name or directory.name,
            path=directory,
            preset=str(model.get("preset", "")),
            image_size=int(model.get("image_size", 0)),
            steps=int(training.get("steps", 0)),
            date=str(training.get("date", "")),
            training_manifest_sha256=str(training.get("training_manifest_sha256", "")),
            sampling=(
                Sampling(sampling["sampler"], int(sampling["steps"]), float(sampling["guidance"]))
                if sampling
                else None
            ),
            distilled_from=str(training.get("distilled_from", "")),
            training_patients=(
                TrainingPatients.from_json(training["patients"])
                if training.get("patients")
                else None
            ),
            mask_channel=model.get("mask_channel", False) is True,
        )
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise SynthError(f"{directory / CHECKPOINT_CONFIG}: unreadable ({error!r})") from error


# --- progress ---------------------------------------------------------------------------------

ProgressEvent = Literal["progress", "done"]
PROGRESS_EVENTS: tuple[ProgressEvent, ...] = get_args(ProgressEvent)


def format_progress_event(
    event: ProgressEvent, done: int, total: int, unit: str, **fields: Any
) -> str:
    """One line of `--progress jsonl`, e.g.
    {"event": "progress", "done": 200, "total": 1000, "unit": "step", "loss": 0.0412}"""
    return json.dumps({"event": event, "done": done, "total": total, "unit": unit, **fields})


def parse_progress_line(line: str) -> dict[str, Any] | None:
    """The event of a `--progress jsonl` line; None for any other line (a message, a warning)."""
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("event") not in PROGRESS_EVENTS:
        return None
    if not all(isinstance(event.get(key), int) for key in ("done", "total")):
        return None
    return event
