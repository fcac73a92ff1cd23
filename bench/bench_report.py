"""Time build_report over a large database (default: 1,000,000 events) against the 1 s target.

    .venv/bin/python bench/bench_report.py                      # generates /tmp/agent-tracker-bench-1000000.lmdb once
    .venv/bin/python bench/bench_report.py --database DB --runs 7 --decoder all

Prints each run (wall and CPU time), the median against the target, and writes the numbers as
JSON (``--output``, default bench/results/bench_report.json). The first run reads the file from
disk (cold page cache after generation is unlikely, but possible); the median is over all runs.
``--decoder all`` measures each available decoder (orjson always; msgspec when installed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bridge.config import BridgeConfig, parse_database_size  # noqa: E402
from bridge.report.build import build_report  # noqa: E402
from bridge.store import Store  # noqa: E402

TARGET_SECONDS = 1.0
EVENT_TABLES = ("sessions", "commits", "communication", "activities", "retrospectives")


def open_store(path: Path, size: int) -> Store:

    store = Store.open(BridgeConfig(database_path=str(path), max_database_size=size), readonly=True)
    if not store.available:
        raise SystemExit(f"cannot open {path}: {store.error}")
    return store


def decoders(choice: str) -> list[str]:
    if choice != "all":
        return [choice]
    found = ["orjson"]
    try:
        import msgspec  # noqa: F401 (only whether it is installed)
        found.append("msgspec")
    except ImportError:
        pass
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="an existing database (default: generate one in the temp folder)")
    parser.add_argument("--events", type=int, default=1_000_000, help="events to generate when there is no --database")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--decoder", default="all", choices=("all", "auto", "orjson", "msgspec"))
    parser.add_argument("--parallel", default="both", choices=("both", "yes", "no"),
                        help="count grades and bugs in a helper process (what the CLI does), or not")
    parser.add_argument("--max-database-size", default="2GiB")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "bench_report.json"))
    args = parser.parse_args(argv)
    size = parse_database_size(args.max_database_size)
    if args.database:
        path = Path(args.database).resolve()
    else:
        import tempfile

        path = Path(tempfile.gettempdir()) / f"agent-tracker-bench-{args.events}.lmdb"
        if not path.exists():
            import generate_events

            print(f"generating {args.events:,} events into {path} ...", flush=True)
            generate_events.main(["--database", str(path), "--events", str(args.events),
                                  "--max-database-size", args.max_database_size])
    store = open_store(path, size)
    with store, store.read() as view:
        counts = {name: view.count(name) for name in EVENT_TABLES}
    events = sum(counts.values())
    print(f"database {path} ({path.stat().st_size / 2**20:.0f} MiB): {events:,} events "
          + ", ".join(f"{name} {count:,}" for name, count in counts.items()))
    results = []
    modes = {"both": (False, True), "yes": (True,), "no": (False,)}[args.parallel]
    for decoder, parallel in [(d, p) for d in decoders(args.decoder) for p in modes]:
        walls, cpus = [], []
        report = None
        for run in range(1, args.runs + 1):
            store = open_store(path, size)
            with store:
                wall, cpu = time.perf_counter(), time.process_time()
                report = build_report(store, decoder=decoder, parallel=parallel)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            walls.append(wall)
            cpus.append(cpu)
            print(f"  {report.decoder:8} {'parallel' if report.parallel else 'single':8} run {run}: "
                  f"{wall:.3f} s wall, {cpu:.3f} s CPU (this process)")
        median = statistics.median(walls)
        verdict = "within" if median <= TARGET_SECONDS else "OVER"
        label = f"{report.decoder}, {'helper process' if report.parallel else 'one process'}"
        print(f"{label}: median {median:.3f} s wall ({statistics.median(cpus):.3f} s CPU in this process) "
              f"over {args.runs} runs, {verdict} the {TARGET_SECONDS:g} s target; {events / median:,.0f} events/s; "
              f"{report.totals['setups']} setups, {report.totals['rankedSetups']} ranked")
        results.append({"decoder": report.decoder, "parallel": report.parallel, "runs": args.runs,
                        "wallSeconds": walls, "cpuSeconds": cpus,
                        "medianWallSeconds": median, "medianCpuSeconds": statistics.median(cpus),
                        "minWallSeconds": min(walls), "targetSeconds": TARGET_SECONDS,
                        "withinTarget": median <= TARGET_SECONDS, "totals": report.totals})
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    document = {"database": str(path), "databaseBytes": path.stat().st_size, "events": events, "counts": counts,
                "results": results, "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                                "processor": platform.processor() or platform.machine(),
                                                "loadAverage": load},
                "measuredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {output}")
    return 0 if all(r["withinTarget"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
