"""Shared fixtures. Every test gets HOME, XDG_CONFIG_HOME and XDG_DATA_HOME in a temp dir: never the real home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Hypothesis keeps its example database in the temp dir, not as .hypothesis/ in the checkout
# (tests/reliability/conftest.py does the same for the reliability suite).
try:
    import tempfile

    from hypothesis.configuration import set_hypothesis_home_dir
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "agent-tracker-hypothesis")
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    # OpenCode's own history (import-opencode, install-plugin's count) is looked up here too.
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    for name in list(os.environ):
        if name.startswith(("AGENT_TRACKER_", "OPENCODE_DB", "OPENCODE_DISABLE_CHANNEL_DB")):
            monkeypatch.delenv(name)
    # Piped output is 200 columns unless COLUMNS says otherwise: a terminal's COLUMNS must not leak in.
    monkeypatch.delenv("COLUMNS", raising=False)
    return home


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project folder."""
    directory = tmp_path / "project"
    directory.mkdir()
    return directory
