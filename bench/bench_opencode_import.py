"""Import speed of `agent-tracker import-opencode` on a generated OpenCode database (target >= 50,000 parts/s).

Generates the database with bench/generate_opencode_db.py (the real layout, 10,000 sessions /
1,000,000 parts by default; bench_opencode_read.py reads the same file) in a temporary folder, or
reuses one in ``--keep DIR``; then imports it with bridge.history_import.import_history into a new,
empty agent-tracker database on the same disk, as the command does: the history read, every event
through TrackingService.handle, durable flushes in batches. Parts/s = all part rows / wall time,
best of ``--repeat`` runs (each into a fresh database). ``--workers`` forces the number of
processes (default: what the command chooses on this machine: 2 with two CPUs).

    .venv/bin/python bench/bench_opencode_import.py [--sessions 10000] [--parts 1000000] [--repeat 3] [--keep DIR]

The last line printed is JSON: parts_per_s (best run), the run times and CPU times of this
process, the counts imported, the workers used, the sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.generate_opencode_db import generate_in_subprocess  # noqa: E402
from bridge.config import BridgeConfig, MiB, ScoringRules  # noqa: E402
from bridge.history_import import import_history  # noqa: E402
from bridge.opencode.history import OpenCodeHistory  # noqa: E402
from bridge.store import Store  # noqa: E402



def import_once(source: Path, folder: Path, workers: int | None) -> dict[str, float]:
    database = folder / "agent-tracker.lmdb"
    for stale in (database, Path(f"{database}-lock")):
        stale.unlink(missing_ok=True)
    store = Store.open(BridgeConfig(database_path=str(database), max_database_size=2048 * MiB))
    assert store.available, store.error
    started, cpu = time.perf_counter(), time.process_time()
    try:
        with OpenCodeHistory.open(source) as history:
            result = import_history(store, history, ScoringRules(), workers=workers)
    finally:
        store.close()
    seconds = time.perf_counter() - started
    if result.flush_errors:
        raise SystemExit(f"the import failed: {result.flush_errors}")
    return {"seconds": seconds, "cpu": time.process_time() - cpu, "parts": result.parts, "sessions": result.sessions,
            "tool_calls": result.tool_calls, "messages": result.messages, "commits": result.commits,
            "pushes": result.pushes, "workers": result.workers, "bytes": database.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--parts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--keep", type=Path, help="build/reuse the OpenCode database in this folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="agent-tracker-opencode-") as temp, \
            tempfile.TemporaryDirectory(prefix="agent-tracker-import-", dir=Path.home()) as target:
        folder = args.keep or Path(temp)
        folder.mkdir(parents=True, exist_ok=True)
        source = folder / f"opencode-{args.sessions}-{args.parts}.db"
        if not source.exists():
            generate_in_subprocess(source, args.sessions, args.parts)
        # What the command chooses on this machine (two processes from two CPUs), fixed for every
        # run: after the first run this process has a thread, and the command's own choice would
        # then fall back to one process (fork() with threads).
        workers = args.workers or (2 if (os.cpu_count() or 1) >= 2 else 1)
        runs = []
        for _ in range(args.repeat):
            run = import_once(source, Path(target), workers)
            runs.append(run)
            print(f"imported {run['sessions']:,} sessions, {run['parts']:,} parts ({run['tool_calls']:,} tool calls, "
                  f"{run['messages']:,} messages with usage, {run['commits']:,} commits) with {run['workers']:g} "
                  f"process(es) in {run['seconds']:.2f} s: {run['parts'] / run['seconds']:,.0f} parts/s "
                  f"(CPU of this process {run['cpu']:.2f} s)")
        best = min(runs, key=lambda r: r["seconds"])
        rate = best["parts"] / best["seconds"]
        print(f"best: {rate:,.0f} parts/s (target >= 50,000)")
        print(json.dumps({
            "parts_per_s": rate, "parts": best["parts"], "sessions": best["sessions"], "tool_calls": best["tool_calls"],
            "messages": best["messages"], "commits": best["commits"], "workers": best["workers"],
            "seconds": [round(r["seconds"], 3) for r in runs], "cpu_seconds": [round(r["cpu"], 3) for r in runs],
            "database_bytes": best["bytes"], "source_bytes": source.stat().st_size, "cpus": os.cpu_count(),
            "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
