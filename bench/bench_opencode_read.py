"""Read speed of bridge.opencode.history on a generated OpenCode database (target >= 50,000 parts/s).

Generates the database with bench/generate_opencode_db.py (the real layout, 10,000 sessions /
1,000,000 parts by default) in a temporary folder, or reuses one in ``--keep DIR``; then reads
every session the way import-opencode will (``OpenCodeHistory.sessions()``: the session row,
its assistant messages with usage, its tool calls) and reports parts/s over all part rows.

    .venv/bin/python bench/bench_opencode_read.py [--sessions 10000] [--parts 1000000] [--repeat 3] [--keep DIR]

The last line printed is JSON: parts_per_s (best run), the run times, the database size and
the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.generate_opencode_db import generate_in_subprocess  # noqa: E402
from bridge.opencode.history import OpenCodeHistory  # noqa: E402


def read_all(path: Path) -> dict[str, float]:
    started, cpu = time.perf_counter(), time.process_time()
    sessions = parts = messages = calls = failed = 0
    cost = 0.0
    with OpenCodeHistory.open(path) as history:
        for session in history.sessions():
            sessions += 1
            parts += session.part_count
            messages += len(session.messages)
            calls += len(session.tool_calls)
            failed += sum(1 for call in session.tool_calls if not call.success)
            cost += sum(message.cost for message in session.messages)
        problems = history.skipped_rows
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu, "sessions": sessions,
            "parts": parts, "messages": messages, "tool_calls": calls, "failed_calls": failed, "cost": cost,
            "skipped_rows": problems}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--parts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build/reuse the database in this folder")
    parser.add_argument("--profile", action="store_true", help="print the top functions of one more read")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="agent-tracker-opencode-") as temp:
        folder = args.keep or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"opencode-{args.sessions}-{args.parts}.db"
        generated = None
        if not path.exists():  # in another process: the peak RSS below is the reader's alone
            generated = generate_in_subprocess(path, args.sessions, args.parts)
        size = path.stat().st_size
        runs = []
        for _ in range(args.repeat):
            result = read_all(path)
            runs.append(result)
            print(f"read {result['sessions']:,} sessions, {result['parts']:,} parts ({result['tool_calls']:,} tool calls, "
                  f"{result['messages']:,} assistant messages) in {result['seconds']:.2f} s: "
                  f"{result['parts'] / result['seconds']:,.0f} parts/s (CPU {result['cpu']:.2f} s)")
        best = min(runs, key=lambda r: r["seconds"])
        rate = best["parts"] / best["seconds"]
        print(f"best: {rate:,.0f} parts/s (target >= 50,000)")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            read_all(path)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
        print(json.dumps({
            "parts_per_s": rate, "parts": best["parts"], "sessions": best["sessions"],
            "tool_calls": best["tool_calls"], "seconds": [round(r["seconds"], 3) for r in runs],
            "cpu_seconds": [round(r["cpu"], 3) for r in runs], "bytes": size,
            "generate_seconds": generated["seconds"] if generated else None,
            "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
