"""Command modules of `python -m synth`; see `study.cli` for the convention.

Each adds the options of its request in `synth.contract` and imports the generator's heavy
libraries (torch, diffusers, scikit-learn) inside its `run`, so that every command, and
`--help`, starts without them.
"""
