"""`python -m study demo`: import the bundled demo images and open the demo study."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="seed the demo study from the bundled images",
        description="Import the bundled phantom and synthetic images and open the educational "
        "demo study with its public reader code (does nothing if it exists already).",
    )
    parser.set_defaults(func=run)


def run(_args: argparse.Namespace) -> int:
    # Imported here: `--help` should not pay for the database and imaging libraries.
    from study.db import open_database
    from study.demo import seed_demo
    from study.readers import reader_link

    demo = seed_demo(open_database())
    state = "created" if demo.created else "already present"
    link = reader_link(demo.code)
    print(f"demo study {demo.study_id} {state}; reader code: {demo.code} ({link})")
    return 0
