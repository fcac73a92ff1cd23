"""What P(best) adds to `recommend`: the posterior of 20 setups, and numpy's import (once per process).

    .venv/bin/python -m bench.bench_posterior           # prints JSON: medians in milliseconds

Target (issue 23): the posterior for 20 setups adds <= 50 ms. numpy is imported by the posterior
only (never at the bridge's startup: tests/test_recommend.py), so a CLI run pays its import once
and the bridge once per process.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.report.model import SetupRow  # noqa: E402


def rows(count: int, seed: int = 20) -> list[SetupRow]:
    rng = random.Random(seed)
    return [SetupRow(f"agent{j}", f"provider/model{j}", "python/fastapi", sessions=rng.randint(1, 40),
                     ended_sessions=10, abandoned_sessions=rng.randint(0, 5), commits=rng.randint(5, 60),
                     bugs=rng.randint(0, 4), tool_calls=200, failed_tool_calls=rng.randint(0, 20),
                     user_grade_counts={-1: rng.randint(0, 5), 1: rng.randint(0, 9), 2: rng.randint(0, 9),
                                        5: rng.randint(0, 5)},
                     agent_grade_counts={-1: 1, 1: 3, 2: 4, 5: rng.randint(0, 9)}) for j in range(count)]


def main() -> int:
    from bridge.report.posterior import posterior

    setups = rows(20)
    posterior(setups)  # numpy imported, warm
    times = []
    for n in range(15):
        started = time.perf_counter()
        posterior(setups, agent_weights=[1.0 - n * 1e-9] * len(setups))  # a new seed each time
        times.append((time.perf_counter() - started) * 1000)
    imports = []
    for _ in range(5):
        code = "import time; t = time.perf_counter(); import numpy; print((time.perf_counter() - t) * 1000)"
        imports.append(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                            check=True).stdout))
    print(json.dumps({"posterior_20_setups_ms": round(statistics.median(times), 1),
                      "numpy_import_ms": round(statistics.median(imports), 1), "target_ms": 50}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
