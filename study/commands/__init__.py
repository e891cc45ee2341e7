"""Command modules of `python -m study`; see `study.cli`."""
