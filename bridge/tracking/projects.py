"""One name per project folder: ``/p``, ``/p/``, ``/p/.`` and a symlink to ``/p`` are one project.

Every project path that enters tracking (a session's directory, a commit's or grade's
projectPath, the bridge's own folder) goes through ``project_path`` first, so records, commit
keys and the report's per-project filters agree on one spelling.
"""

from __future__ import annotations

import os
from functools import lru_cache


@lru_cache(maxsize=4096)
def project_path(path: str) -> str:
    """The canonical form: symlinks resolved for an absolute path; trailing separators dropped."""
    if os.path.isabs(path):
        return os.path.realpath(path)
    # A relative path has no folder to resolve against in the bridge: only tidy its spelling.
    return os.path.normpath(path)


def optional_project_path(path: str | None) -> str | None:
    return project_path(path) if path else None
