"""`python -m study <command>`: one module per command in `study.commands`."""

from __future__ import annotations

from collections.abc import Sequence

from study.imaging.commandline import build_parser, run


def main(argv: Sequence[str] | None = None) -> int:
    import study.commands

    parser = build_parser(
        "python -m study",
        "VTT Studio: import images, seed the demo, analyse and export reader studies.",
        study.commands,
    )
    return run(parser, argv)
