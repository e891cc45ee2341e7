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
from collections.abc import Sequence
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
