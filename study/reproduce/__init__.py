"""`python -m study reproduce`: the seed study's evaluation on a PI-CAI folder, in stages that
are skipped when done (`pipeline` declares them, `stages` runs them).

- `pipeline`: the nine stages, the options and the output layout
- `stages`: the stage declaration, its record, and the runner that skips what is done
- `fingerprints`: digests of a stage's inputs
- `estimates`: how long a stage will take, from its work and measured rates
- `split`: the patient split, stratified by lesion
- `synthetic_sets`: the seed study's synthetic images as generator requests
- `generator`: running the generator's requests as subprocesses, with progress
- `manifests`: subsets and merges of manifests
- `database`: the import, and the seed-protocol study of this run's images
- `summary`: the machine results as HTML

This module imports nothing, so that the command's `--help` stays fast.
"""

DEFAULT_STUDY_NAME = "Seed protocol reproduction"
