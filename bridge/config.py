"""Bridge configuration: one attrs class, defaults in one place, one converter.

Sources, lowest to highest precedence (documented in README and protocol/README.md):
  1. defaults below,
  2. the ``config`` object the plugin sends in ``initialize`` (the user's opencode.json options),
  3. environment variables ``AGENT_TRACKER_DATABASE_PATH`` / ``AGENT_TRACKER_MAX_DATABASE_SIZE``,
  4. command-line flags (``--database``, ``--max-database-size``).
Whoever launches the process (env, flags) overrides what is persisted in opencode.json.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from .protocol.names import wire_name
from .wording import noun

# cattrs' stub types the attribute overrides (**kwargs) and its own flags as one namespace, which
# mypy cannot tell apart when the overrides come as a dict; the function itself takes both.
_structure_fn: Callable[..., Callable[[Any, Any], Any]] = make_dict_structure_fn

MiB = 1024 * 1024
GiB = 1024 * MiB
DEFAULT_MAX_DATABASE_SIZE = 512 * MiB
MIN_DATABASE_SIZE = 1 * MiB
MAX_DATABASE_SIZE = 2 * GiB
MEMORY_PATH = ":memory:"
DATABASE_FILE_NAME = "agent-tracker.lmdb"

MAX_JOURNAL_SYNC_MILLISECONDS = 60_000
DEFAULT_JOURNAL_SYNC_MILLISECONDS = 50.0

ENV_DATABASE_PATH = "AGENT_TRACKER_DATABASE_PATH"
ENV_MAX_DATABASE_SIZE = "AGENT_TRACKER_MAX_DATABASE_SIZE"


class ConfigError(ValueError):
    """One clear sentence naming the option, the value and what is accepted."""


@attrs.frozen
class ScoringRules:
    """How events turn into points. Overridable through ``config.scoring``."""

    tool_call_xp: float = 1.0
    command_xp: float = 2.0
    commit_xp: float = 5.0
    push_xp: float = 10.0
    # Levelling up from SP n to n+1 costs level_cost * n XP.
    level_cost: float = 1000.0
    initial_skill_points: float = 1.0
    initial_experience_points: float = 0.0
    initial_communication_score: float = 60.0
    # The communication score is capped at communication_cap_per_skill_point * SP.
    communication_cap_per_skill_point: float = 100.0

    def to_wire(self) -> dict[str, float]:
        """As ``config.scoring`` spells them (the journal keeps them so a replay scores alike)."""
        return {wire_name(field.name): getattr(self, field.name) for field in attrs.fields(ScoringRules)}


# Accepted range of each scoring option, inclusive (README "Configuration", schema.json ScoringRules).
# Without a ceiling one option like pushXp 1e30 made the level-up loop spin for ever. These keep
# every sum exact in a double: a million XP per event for a billion events stays below 2**53.
SCORING_RANGES: dict[str, tuple[float, float]] = {
    "tool_call_xp": (0, 1_000_000),
    "command_xp": (0, 1_000_000),
    "commit_xp": (0, 1_000_000),
    "push_xp": (0, 1_000_000),
    "level_cost": (1, 1_000_000_000),
    "initial_skill_points": (0, 1_000),
    "initial_experience_points": (0, 1_000_000_000),
    "initial_communication_score": (0, 1_000_000),
    "communication_cap_per_skill_point": (0, 1_000_000),
}


@attrs.frozen
class BridgeConfig:
    # None means the default central path (see default_database_path).
    database_path: str | None = None
    max_database_size: int = DEFAULT_MAX_DATABASE_SIZE
    # Periodic flush; None or 0 disables it (flushes still happen on push, delete, shutdown).
    flush_interval_seconds: float | None = None
    # Group commit: fdatasync the journal at most this often while appends are unsynced; 0 = never
    # (the journal then survives a crash of the bridge, not a power cut). bench/README.md: the cost.
    journal_sync_milliseconds: float = DEFAULT_JOURNAL_SYNC_MILLISECONDS
    scoring: ScoringRules = ScoringRules()

    def resolved_database_path(self) -> Path | None:
        """The database file; None for ``:memory:`` (a private temporary environment)."""
        return resolve_database_path(self.database_path)


_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": MiB,
    "g": 1000**3, "gb": 1000**3, "gib": GiB,
}
_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_SIZE_RANGE = "between 1 MiB (1048576 bytes) and 2 GiB (2147483648 bytes)"


def parse_database_size(value: Any, option: str = "maxDatabaseSize") -> int:
    """Bytes from an int or a string such as ``"256MiB"`` or ``"1GB"``; range-checked."""
    if isinstance(value, bool) or value is None:
        raise ConfigError(f"{option} must be a size in bytes {_SIZE_RANGE}; got {value!r}.")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ConfigError(f"{option} must be a whole number of bytes {_SIZE_RANGE}; got {value!r}.")
        size = int(value)
    elif isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _SIZE_PATTERN.match(value)
        unit = match and _SIZE_UNITS.get(match.group(2).lower())
        if not match or unit is None:
            raise ConfigError(
                f"{option} must be a number of bytes or a size like \"256MiB\" or \"1GB\" "
                f"{_SIZE_RANGE}; got {value!r}."
            )
        amount = float(match.group(1)) * unit
        if not amount.is_integer():
            raise ConfigError(f"{option} must be a whole number of bytes {_SIZE_RANGE}; got {value!r}.")
        size = int(amount)
    else:
        raise ConfigError(f"{option} must be a size in bytes {_SIZE_RANGE}; got {value!r}.")
    if not MIN_DATABASE_SIZE <= size <= MAX_DATABASE_SIZE:
        raise ConfigError(f"{option} must be {_SIZE_RANGE}; got {value!r}.")
    return size


def config_home() -> Path:
    """OpenCode's own convention: $XDG_CONFIG_HOME if set, else ~/.config."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg)
    return Path.home() / ".config"


def default_database_path() -> Path:
    return config_home() / "opencode" / DATABASE_FILE_NAME


def resolve_database_path(raw: str | None) -> Path | None:
    """The default path, ``~`` expansion, relative paths against the home directory."""
    if raw is None:
        return default_database_path()
    if raw == MEMORY_PATH:
        return None
    if raw == "~" or raw.startswith("~/"):
        return Path.home() / raw[2:]
    if raw.startswith("~"):  # ~user/...: that user's home, if there is such a user
        expanded = os.path.expanduser(raw)
        if not expanded.startswith("~"):
            return Path(expanded)
    path = Path(raw)
    # Never the current directory: OpenCode starts the bridge in whatever project is open.
    return path if path.is_absolute() else Path.home() / path


def _strict_str(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _database_path(value: Any, _type: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"databasePath must be a non-empty path string (absolute, ~/..., relative to the home "
            f"directory, or \":memory:\"); got {value!r}."
        )
    if "\x00" in value:
        raise ConfigError(f"databasePath must not contain a NUL byte; got {value!r}.")
    return value


def _flush_interval(value: Any, _type: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= 86400:
        raise ConfigError(
            f"flushIntervalSeconds must be a number of seconds between 0 (off) and 86400; got {value!r}."
        )
    return float(value) or None


def _journal_sync(value: Any, _type: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= MAX_JOURNAL_SYNC_MILLISECONDS:
        raise ConfigError(
            f"journalSyncMilliseconds must be a number of milliseconds between 0 (never sync) and "
            f"{MAX_JOURNAL_SYNC_MILLISECONDS}; got {value!r}."
        )
    return float(value)


def _number(option: str, minimum: float, maximum: float) -> Callable[[Any, Any], float]:
    def structure(value: Any, _type: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not minimum <= value <= maximum:
            raise ConfigError(f"scoring.{option} must be a number from {minimum:g} to {maximum:.0f}; "
                              f"got {value!r}.")
        return float(value)
    return structure


def make_config_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(str, _strict_str)
    # ScoringRules first: BridgeConfig's generated hook captures the nested class's hook.
    for cls, hooks in (
        (ScoringRules, {
            field.name: _number(wire_name(field.name), *SCORING_RANGES[field.name])
            for field in attrs.fields(ScoringRules)
        }),
        (BridgeConfig, {
            "database_path": _database_path,
            "max_database_size": lambda v, _t: parse_database_size(v),
            "flush_interval_seconds": _flush_interval,
            "journal_sync_milliseconds": _journal_sync,
        }),
    ):
        overrides = {}
        for field in attrs.fields(cls):
            kwargs: dict[str, Any] = {"rename": wire_name(field.name)}
            if field.name in hooks:
                kwargs["struct_hook"] = hooks[field.name]
            overrides[field.name] = override(**kwargs)
        converter.register_structure_hook(
            cls, _structure_fn(cls, converter, _cattrs_forbid_extra_keys=True, **overrides)
        )
    return converter


CONVERTER = make_config_converter()


def _first_error(exc: BaseException) -> str:
    """Reduce a cattrs exception group to one clear sentence."""
    if isinstance(exc, ConfigError):
        return str(exc)
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        names = ", ".join(sorted(exc.extra_fields))
        return f"Unknown configuration {noun(len(exc.extra_fields), 'option')}: {names}."
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            note = next((n for n in getattr(sub, "__notes__", []) if isinstance(n, str)), "")
            message = _first_error(sub)
            if isinstance(sub, KeyError) and "Structuring class" in note:
                continue
            if isinstance(sub, (TypeError, ValueError)) and not isinstance(sub, ConfigError) and note:
                return f"{note.replace('Structuring class', '').strip()}: {message}"
            return message
    return str(exc)


def structure_config(raw: Mapping[str, Any] | None) -> BridgeConfig:
    """Wire (camelCase) config → BridgeConfig, or ConfigError with one sentence."""
    if raw is None:
        return BridgeConfig()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config must be an object; got {raw!r}.")
    scoring = raw.get("scoring")
    if scoring is not None and not isinstance(scoring, Mapping):
        raise ConfigError(f"scoring must be an object of rule overrides; got {scoring!r}.")
    if scoring is not None:
        unknown = sorted(set(scoring) - {wire_name(f.name) for f in attrs.fields(ScoringRules)})
        if unknown:
            raise ConfigError(f"Unknown scoring {noun(len(unknown), 'rule')}: {', '.join(map(str, unknown))}.")
    try:
        return CONVERTER.structure(dict(raw), BridgeConfig)
    except Exception as exc:  # cattrs wraps errors in groups; flatten to one sentence
        raise ConfigError(_first_error(exc)) from exc


def environment_overrides(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    overrides: dict[str, Any] = {}
    if environ.get(ENV_DATABASE_PATH):
        overrides["databasePath"] = environ[ENV_DATABASE_PATH]
    if environ.get(ENV_MAX_DATABASE_SIZE):
        overrides["maxDatabaseSize"] = environ[ENV_MAX_DATABASE_SIZE]
    return overrides


def load_config(
    initialize_config: Mapping[str, Any] | None = None,
    cli_overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> BridgeConfig:
    """Merge the sources in precedence order and validate once."""
    if initialize_config is not None and not isinstance(initialize_config, Mapping):
        raise ConfigError(f"config must be an object; got {initialize_config!r}.")
    merged: dict[str, Any] = dict(initialize_config or {})
    from_environment = environment_overrides(environ)
    if "maxDatabaseSize" in from_environment:  # name the variable the user actually set
        parse_database_size(from_environment["maxDatabaseSize"], ENV_MAX_DATABASE_SIZE)
    merged.update(from_environment)
    merged.update({k: v for k, v in (cli_overrides or {}).items() if v is not None})
    return structure_config(merged)
