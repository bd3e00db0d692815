"""Where stagegate.yaml is: at pytest's rootdir, or else the first one found walking up from
the directory a command runs in, as pytest finds its own ini files.

The walk looks in the starting directory, then its parent, and so on; it stops at the first
stagegate.yaml, after a repository root (a directory holding ``.git``, a folder or a worktree's
file) or at the filesystem root. So a project's tests run from ``tests/`` find the project's
file, and a repository never picks up a stray file from the directories above it.

Light on purpose (only ``os`` and ``pathlib``): the pytest plugin calls it in every run of
the environment, most of which have no stagegate.yaml at all. Used by ``plugin.options``
(``--stagegate-config`` and the ini key ``stagegate_config`` win over it) and by
``stagegate explain``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import defaults

__all__ = ["ConfigSearch", "find_config"]

REPOSITORY_MARKER = ".git"


@dataclass(frozen=True)
class ConfigSearch:
    """The outcome of one search: the file found (or None) and where it looked."""

    path: Path | None
    start: Path  # the directory the walk began in (absolute)
    rootdir: Path | None  # looked in first, when given
    stop: Path  # the last directory the walk looked in
    stopped_at_repository: bool  # ``stop`` holds .git (else: the file was found, or the root)

    @property
    def how(self) -> str:
        """How the file was found, for a header: ``found at the rootdir``, ``found in the
        current directory``, ``found walking up from /p/tests``; "" when none was."""
        if self.path is None:
            return ""
        folder = self.path.parent
        if self.rootdir is not None and folder == self.rootdir:
            return "found at the rootdir"
        if folder == self.start:
            return "found in the current directory"
        return f"found walking up from {self.start}"

    @property
    def looked(self) -> str:
        """Where the search looked, for a message: ``at the rootdir /p/app or in /p/tests or
        any directory above it up to /p (the repository root)``."""
        repository = self.stopped_at_repository
        if self.stop == self.start:
            walk = f"in {self.start}" + (" (a repository root)" if repository else "")
        else:
            boundary = "the repository root" if repository else "the filesystem root"
            walk = f"in {self.start} or any directory above it up to {self.stop} ({boundary})"
        if self.rootdir is None or self.rootdir == self.start:
            return walk
        return f"at the rootdir {self.rootdir} or {walk}"


def find_config(start: Path | str, rootdir: Path | str | None = None) -> ConfigSearch:
    """Look for stagegate.yaml at ``rootdir`` (when given), then in ``start`` and each
    directory above it, stopping at the first found, after a directory that holds ``.git``,
    or at the filesystem root. Only regular files count (a folder of that name does not)."""
    here = Path(os.path.abspath(start))
    root = Path(os.path.abspath(rootdir)) if rootdir is not None else None

    def search(path: Path | None, stop: Path, repository: bool) -> ConfigSearch:
        return ConfigSearch(path, here, root, stop, repository)

    if root is not None and (root / defaults.CONFIG_FILE).is_file():
        return search(root / defaults.CONFIG_FILE, here, False)
    folder = here
    for folder in (here, *here.parents):
        candidate = folder / defaults.CONFIG_FILE
        if candidate.is_file():
            return search(candidate, folder, False)
        if (folder / REPOSITORY_MARKER).exists():
            return search(None, folder, True)
    return search(None, folder, False)
