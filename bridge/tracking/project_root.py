"""Which folder a path belongs to as a project: the nearest folder at or above it that holds a
manifest (pyproject.toml, package.json, Cargo.toml, ...) or is a git work tree's root, as git
finds its repository from a subfolder. `recommend` in proj/src/payments classifies proj."""

from __future__ import annotations

from pathlib import Path

from .stack import FINGERPRINT_FILES

# What marks a project's root: its manifests (AGENTS.md may sit in any folder: not a root), git.
ROOT_MARKERS = tuple(name for name in FINGERPRINT_FILES if name != "AGENTS.md") + (".git",)


def project_root(directory: Path) -> Path:
    """The nearest folder from ``directory`` upwards with a manifest or ``.git``; ``directory``
    itself when no folder above it has one (a loose folder is its own project)."""
    for folder in (directory, *directory.parents):
        try:
            if any((folder / marker).exists() for marker in ROOT_MARKERS):
                return folder
        except OSError:  # a folder we may not look into ends the walk
            break
    return directory
