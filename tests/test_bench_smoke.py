"""Smoke test of the benchmark harness: `python -m bench --quick` completes and prints every figure.

No timing assertions (the machine is shared and noisy): only that the run finishes, that
each figure of bench.run.SECTIONS is in its JSON, and that each figure's name, with its
target where it has one, is printed in the table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_bench_prints_every_figure(tmp_path: Path) -> None:
    from bench.run import FIGURE_KEYS

    output = tmp_path / "quick.json"
    # HOME and XDG_CONFIG_HOME already point at a temp dir (conftest); the bench gives every
    # process it spawns its own temp HOME as well.
    result = subprocess.run([sys.executable, "-m", "bench", "--quick", "--output", str(output)],
                            cwd=ROOT, capture_output=True, text=True, timeout=170)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    document = json.loads(output.read_text())
    figures = document["figures"]
    assert [f["key"] for f in figures][:len(FIGURE_KEYS)] == FIGURE_KEYS
    table = result.stdout.split("\nnotes:")[0]
    for item in figures:
        line = next((row for row in table.splitlines() if row.startswith(item["name"])), None)
        assert line is not None, f"figure {item['name']!r} not printed"
        if item["target"]:
            assert item["target"] in line, f"target of {item['name']!r} not printed"
    assert "targets:" in result.stdout
