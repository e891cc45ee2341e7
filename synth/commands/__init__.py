"""Command modules of `python -m synth`; see `study.cli` for the convention."""
