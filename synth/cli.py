"""`python -m synth <command>`: one module per command in `synth.commands`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from study.imaging.commandline import build_parser, run


def parser() -> argparse.ArgumentParser:
    """The parser of `python -m synth`, every command's options built from `synth.contract`."""
    import synth.commands

    return build_parser(
        "python -m synth",
        "VTT Studio generator: phantom data, training, sampling and realism checks.",
        synth.commands,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run(parser(), argv)
