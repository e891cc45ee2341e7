"""`python -m synth <command>`: one module per command in `synth.commands`."""

from __future__ import annotations

from collections.abc import Sequence

from study.imaging.commandline import build_parser, run


def main(argv: Sequence[str] | None = None) -> int:
    import synth.commands

    parser = build_parser(
        "python -m synth",
        "VTT Studio generator: phantom data, training, sampling and realism checks.",
        synth.commands,
    )
    return run(parser, argv)
