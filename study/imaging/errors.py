"""Errors a user can act on. Every message names the file and the problem."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


class VTTError(Exception):
    """Base of every error this project raises on purpose; its message is shown to the user."""

    @property
    def problems(self) -> list[str]:
        """The problems the message lists: ours put each on its own line (see `one_line`)."""
        return [line for line in str(self).splitlines() if line.strip()]


class ImagingError(VTTError):
    """An image file or folder that cannot be read, or that fails a safety check."""


class ManifestError(VTTError):
    """A manifest that is malformed; the message lists every bad row."""


def one_line(error: BaseException, limit: int = 200) -> str:
    """A library's error message folded onto one line and shortened, to quote inside ours.

    Our messages are one line per problem (a manifest error lists one per line), while
    libraries such as SimpleITK raise multi-line messages with C++ source locations.
    """
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class ShownPaths:
    """How messages name the files of a server folder the user knows by another name.

    An upload is unpacked into a temporary folder on the server; its messages name the uploaded
    file (`name`) and the files by their paths inside it, so that none shows where the server
    keeps it.
    """

    root: Path
    name: str

    def file(self, path: Path) -> str:
        """A file under the root, named `<name>: <path inside>`."""
        return f"{self.name}: {self.text(str(path))}"

    def text(self, message: str) -> str:
        """`message` with each path under the root written relative to it, the root as `name`."""
        # Both spellings: paths in messages are resolved, the root may not be (a symlinked
        # data folder), and the longer one first, since it may hold the other.
        roots = sorted({str(self.root), str(self.root.resolve())}, key=len, reverse=True)
        whole = f"(?:{_any_of(roots)})(?:({re.escape(os.sep)})|(?!\\w))"
        message = re.sub(whole, lambda m: "" if m.group(1) else self.name, message)
        # one_line() may have cut a library's message short inside the root, before its "...".
        stubs = sorted({root[:end] for root in roots for end in range(2, len(root))}, key=len)
        cut = f"(?:{_any_of(reversed(stubs))})\\.\\.\\."
        return re.sub(cut, lambda m: f"{self.name}...", message)


def _any_of(texts: Iterable[str]) -> str:
    """A regular expression matching any of `texts`, the first that matches where it is tried."""
    return "|".join(map(re.escape, texts))


def file_problems(path: Path, problems: Iterable[str], shown: ShownPaths | None = None) -> str:
    """A message listing `problems` of the file at `path`, one per line, each after its name.

    With `shown`, the file and every path in the problems are named as the user knows them.
    """
    if shown is None:
        return "\n".join(f"{path}: {problem}" for problem in problems)
    return "\n".join(f"{shown.file(path)}: {shown.text(problem)}" for problem in problems)
