"""The optional extra (pyarrow, DuckDB): imported on first use, with one line saying how to install it."""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = ("pip install 'agent-tracker[team]' (from a clone: pip install -e '.[team]')")


class ExtraMissing(Exception):
    """The team commands need pyarrow and DuckDB, which the base install leaves out."""


def require(module: str) -> ModuleType:
    """``module`` (pyarrow, pyarrow.parquet, duckdb) or ExtraMissing naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.partition(".")[0]
        raise ExtraMissing(f"This command needs {top}, part of the optional team extra: {INSTALL_HINT}.") from None
