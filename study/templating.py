"""The Jinja2 environment of the HTML pages the app writes (study/templates/): autoescaped,
strict about undefined names, one per process."""

from __future__ import annotations

import functools

from jinja2 import Environment, PackageLoader, StrictUndefined


@functools.cache
def environment() -> Environment:
    """The templates of study/templates."""
    return Environment(
        loader=PackageLoader("study", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
