"""Where OpenCode keeps its history database: $XDG_DATA_HOME/opencode/opencode.db, OPENCODE_DB, channels."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

DATABASE_NAME = "opencode.db"



#: OpenCode's release channels that use ``opencode.db``; any other channel uses ``opencode-<channel>.db``.
RELEASE_CHANNELS = ("latest", "beta", "prod")



# ---------------------------------------------------------------------------------------------
# where the database is


def data_directory(env: Mapping[str, str] | None = None) -> Path:
    """OpenCode's data folder: ``$XDG_DATA_HOME/opencode``, by default ``~/.local/share/opencode``."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "share")
    return Path(base) / "opencode"



def opencode_database_path(env: Mapping[str, str] | None = None, channel: str = "latest") -> Path | None:
    """Where OpenCode of ``channel`` keeps its database (whether or not it exists yet): ``OPENCODE_DB``
    when set (absolute, or relative to the data folder; None for ``:memory:``), else
    :func:`channel_database_name` in the data folder. ``OPENCODE_DISABLE_CHANNEL_DB=1`` (or
    ``true``) makes every channel use ``opencode.db``."""
    env = os.environ if env is None else env
    override = env.get("OPENCODE_DB")
    if override:
        if override == ":memory:":
            return None
        return Path(override) if os.path.isabs(override) else data_directory(env) / override
    if env.get("OPENCODE_DISABLE_CHANNEL_DB") in ("1", "true"):
        return data_directory(env) / DATABASE_NAME
    return data_directory(env) / channel_database_name(channel)



def channel_database_name(channel: str) -> str:
    """The file name a channel uses, as OpenCode computes it (``opencode-<channel>.db`` with
    characters outside ``[a-zA-Z0-9._-]`` replaced by ``-``; ``opencode.db`` for releases)."""
    if channel in RELEASE_CHANNELS:
        return DATABASE_NAME
    return "opencode-" + "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "-" for c in channel) + ".db"



def database_candidates(env: Mapping[str, str] | None = None) -> list[Path]:
    """Existing history databases in OpenCode's data folder: ``opencode.db`` first, then the
    channel databases ``opencode-*.db``, newest first."""
    folder = data_directory(env)
    found = [folder / DATABASE_NAME] if (folder / DATABASE_NAME).is_file() else []
    channels = [p for p in folder.glob("opencode-*.db") if p.is_file()]
    channels.sort(key=lambda p: (-p.stat().st_mtime, p.name))
    return found + channels



def locate_database(db: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The database to read: ``db`` (``--db PATH``) when given; else ``OPENCODE_DB`` as OpenCode
    reads it (absolute, or relative to the data folder); else ``opencode.db`` in the data folder,
    or the newest ``opencode-<channel>.db`` when only channel databases exist. Raises
    :class:`OpenCodeHistoryError` when there is none."""
    env = os.environ if env is None else env
    if db is not None:
        path = Path(os.fspath(db)).expanduser()
        if not path.is_file():
            raise NoOpenCodeDatabase(f"There is no OpenCode database at {path}.")
        return path
    if env.get("OPENCODE_DB"):
        configured = opencode_database_path(env)
        if configured is None:
            raise NoOpenCodeDatabase("OPENCODE_DB is :memory:, so OpenCode keeps no history on disk to read.")
        if not configured.is_file():
            raise NoOpenCodeDatabase(f"There is no OpenCode database at {configured} (from OPENCODE_DB).")
        return configured
    candidates = database_candidates(env)
    if not candidates:
        raise NoOpenCodeDatabase(
            f"No OpenCode database in {data_directory(env)} (OpenCode keeps its history in "
            f"{DATABASE_NAME} there); pass --db PATH or set OPENCODE_DB.")
    return candidates[0]


class OpenCodeHistoryError(Exception):
    """OpenCode's database cannot be read; the message is one sentence saying why."""


class NoOpenCodeDatabase(OpenCodeHistoryError):
    """There is no OpenCode database at the path: the CLI's "no database" exit code (3)."""
