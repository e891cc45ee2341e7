"""The command-line harness shared by `python -m study` and `python -m synth`.

It lives beside imaging (which both sides may use) so that `synth` needs nothing else of `study`.
Each command module defines `register(subparsers)`, which adds its parser and sets `func`
(a callable taking the parsed arguments and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from study.imaging.errors import VTTError


def command_modules(package: ModuleType) -> list[ModuleType]:
    """The command modules of `package`, in name order."""
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.ispkg)
    return [importlib.import_module(f"{package.__name__}.{name}") for name in names]


def build_parser(prog: str, description: str, package: ModuleType) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules(package):
        module.register(subparsers)
    return parser


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse, run, and turn a `VTTError` into one clear line on stderr and exit code 1."""
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except VTTError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# The default of --min-lesion-voxels; study.imaging.lesions.DEFAULT_MIN_LESION_VOXELS says the
# same, and a test checks that they agree (imported here, `--help` would load numpy).
MIN_LESION_VOXELS = 10


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is out of range; use {minimum} or more")
        return value

    return parse


def _lesion_labels(text: str) -> frozenset[int] | None:
    from study.imaging.errors import ImagingError
    from study.imaging.lesions import parse_lesion_labels

    try:
        return parse_lesion_labels(text)
    except ImagingError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def add_lesion_rule_options(parser: argparse.ArgumentParser, *, same_as: str = "") -> None:
    """--lesion-labels and --min-lesion-voxels: which voxels of a mask make a slice a lesion
    slice (`study.imaging.lesions.LesionRule`). `same_as` names the command that must be given
    the same options, when there is one."""
    also = f"; give `{same_as}` the same" if same_as else ""
    parser.add_argument(
        "--lesion-labels",
        type=_lesion_labels,
        default=None,
        metavar="L,L,...",
        help="the mask labels that count as lesion, e.g. 2,3,4,5 for PI-CAI's ISUP >= 2 "
        f"(default: every label > 0){also}",
    )
    parser.add_argument(
        "--min-lesion-voxels",
        type=whole_number(1),
        default=MIN_LESION_VOXELS,
        metavar="N",
        help="a slice shows a lesion when it holds at least N voxels of lesion labels "
        f"(default: {MIN_LESION_VOXELS}){also}",
    )
