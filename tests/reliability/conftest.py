"""Fixtures of the reliability suite: the figures file written at the end of the session."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import pytest

from reliability import FIGURES, MODE, ROOT, base_seed

# Hypothesis caches (unicode tables, constants) go to the temp dir, not into the repository.
try:
    import tempfile

    from hypothesis.configuration import set_hypothesis_home_dir
    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "agent-tracker-hypothesis")
except ImportError:  # pragma: no cover
    pass

# CI figures in reliability-latest.json, soak figures beside them (both git-ignored: bench/results/*.json).
RESULTS = ROOT / "bench" / "results" / ("reliability-latest.json" if MODE == "ci" else "reliability-soak-latest.json")


@pytest.fixture(scope="session", autouse=True)
def reliability_figures(tmp_path_factory: pytest.TempPathFactory):
    """After the session: the figures every test recorded, for docs/reliability.md's table."""
    started = time.time()
    yield FIGURES
    if not FIGURES:
        return
    payload = {
        "mode": MODE,
        "seed": base_seed(),
        "finishedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wallSeconds": round(time.time() - started, 1),
        "python": platform.python_version(),
        "cpus": __import__("os").cpu_count(),
        "tests": FIGURES,
    }
    text = json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (tmp_path_factory.getbasetemp() / "reliability-figures.json").write_text(text, encoding="utf-8")
    try:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")
    except OSError:
        pass
