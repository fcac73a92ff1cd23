"""Report and recommend from the summaries vs today's full scan, flush cost with and without them,
and how much they add to the database, over generated databases (bench/generate_events.py).

    .venv/bin/python bench/bench_summaries.py --events 1000000 --events 3000000 --output OUT.json

Per size, in this order on one database: flushes without the summaries' write hook (the database
has none yet), then the one-time build (what the first writer does to an old database), then the
same flushes with the hook; then report and recommend, each from the summaries and by the full
scan (``build_report(scan=True)``, with the forked helper as the CLI runs it) on the same snapshot.
Database growth is the B-tree pages the summaries add, over the pages in use before.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bridge.config import BridgeConfig, ScoringRules, parse_database_size  # noqa: E402
from bridge.store import Store  # noqa: E402

FLUSHES = 60


def used_bytes(store: Store) -> int:
    with store.read() as view:
        total = 0
        for name in ("agents", "sessions", "commits", "communication", "retrospectives", "activities", "projects",
                     "migrations", "meta", "usage", "calls", "summaries"):
            handle = view._dbs.get(name)  # noqa: SLF001 - page counts of each sub-database
            if handle is not None:
                stat = view._txn.stat(handle)  # noqa: SLF001
                total += stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]
    return total * 4096


def summaries_bytes(store: Store) -> int:
    with store.read() as view:
        handle = view._dbs.get("summaries")  # noqa: SLF001
        if handle is None:
            return 0
        stat = view._txn.stat(handle)  # noqa: SLF001
        return (stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]) * 4096


def timed(runs: int, action: Callable[[], Any]) -> list[float]:
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        walls.append(time.perf_counter() - started)
    return walls


def flushes(store: Store, project: Path, label: str, count: int) -> list[float]:
    """``count`` flushes of a typical push: a session's tool calls and a commit, then its grade and end."""
    from bridge.tracking.service import TrackingService

    def commit_call(session: str, short: str) -> dict[str, Any]:
        return {"sessionID": session, "callID": "commit", "tool": "bash", "success": True,
                "args": {"command": "git commit -am 'feat: x'"},
                "output": f"[main {short}] feat: x\n 1 file changed, 1 insertion(+)\n"}

    service = TrackingService(store, ScoringRules(), default_directory=str(project))
    walls = []
    for number in range(count):
        session = f"bench-{label}-{number}"
        service.handle("session.created", {"sessionID": session, "directory": str(project),
                                           "agent": {"id": "build", "provider": "openai", "model": "gpt-5"}})
        for call in range(10):
            service.handle("tool.executed", {"sessionID": session, "callID": f"c{call}", "tool": "read",
                                             "success": True})
        prefix = zlib.crc32(label.encode()) & 0xFFF  # hashes differ between the runs on one database
        service.handle("tool.executed", commit_call(session, f"{prefix:03x}{number:04x}"))
        started = time.perf_counter()
        service.flush()
        walls.append(time.perf_counter() - started)
        service.handle("grade", {"grade": 5, "grader": "user", "sessionID": session})
        service.handle("session.deleted", {"sessionID": session})
        started = time.perf_counter()
        service.flush()
        walls.append(time.perf_counter() - started)
    return walls


def measure(events: int, runs: int, scan_runs: int, size: int, workdir: Path) -> dict[str, Any]:
    import generate_events

    from bridge import summaries
    from bridge.report.build import build_report
    from bridge.report.recommend import recommend_for
    from bridge.store import _WRITE_HOOKS
    from bridge.summaries.maintain import rebuild

    path = workdir / f"agent-tracker-summaries-{events}.lmdb"
    if path.exists():
        path.unlink()
    _WRITE_HOOKS.clear()  # the generator writes records directly, as an older agent-tracker left them
    started = time.perf_counter()
    generate_events.main(["--database", str(path), "--events", str(events), "--max-database-size", str(size)])
    generated_s = time.perf_counter() - started
    project = workdir / f"shop-{events}"
    project.mkdir(exist_ok=True)
    (project / "pyproject.toml").write_text('[project]\ndependencies = ["fastapi"]\n')
    config = BridgeConfig(database_path=str(path), max_database_size=size)
    store = Store.open(config)
    assert store.available, store.error
    before_bytes = used_bytes(store)
    summaries.enable()
    started = time.perf_counter()
    rows = store.write(lambda view: rebuild(view))
    rebuild_s = time.perf_counter() - started
    # Flushes with and without the summaries' hook, interleaved (the disk's fsync time drifts on a
    # shared machine). "Without": a hook that does nothing, as the store ran before this change.
    maintain = _WRITE_HOOKS[0]
    hook_seconds: list[float] = []

    def timed_hook(view: Any) -> None:
        started = time.perf_counter()
        maintain(view)
        hook_seconds.append(time.perf_counter() - started)

    real = [timed_hook]
    without: list[float] = []
    with_hook: list[float] = []
    flushes(store, project, "warm-up", 5)
    for block in range(FLUSHES // 5):
        _WRITE_HOOKS[:] = [lambda view: None]
        without += flushes(store, project, f"plain-{block}", 5)
        _WRITE_HOOKS[:] = real
        with_hook += flushes(store, project, f"summarised-{block}", 5)
    grown = summaries_bytes(store)
    store.close()
    reader = Store.open(config, readonly=True)
    try:
        report_summaries = timed(runs, lambda: build_report(reader))
        report_scan = timed(scan_runs, lambda: build_report(reader, scan=True, parallel=True))
        recommend_summaries = timed(runs, lambda: recommend_for(reader, project))
        recommend_scan = timed(scan_runs, lambda: recommend_for(reader, project, scan=True))
        source = build_report(reader).source
        advice = recommend_for(reader, project)
        answered = [level.report.source for level in advice.levels]
    finally:
        reader.close()
    path.unlink()
    median = statistics.median
    return {"events": events, "generatedSeconds": generated_s, "rebuildSeconds": rebuild_s, "summaryRows": rows,
            "reportSummariesSeconds": median(report_summaries), "reportScanSeconds": median(report_scan),
            "recommendSummariesSeconds": median(recommend_summaries), "recommendScanSeconds": median(recommend_scan),
            "reportSource": source, "recommendSources": answered, "recommendLevels": len(advice.levels),
            "flushWithoutSeconds": median(without), "flushWithSeconds": median(with_hook),
            "flushRatio": median(with_hook) / median(without), "hookSeconds": median(hook_seconds),
            "hookShare": median(hook_seconds) / median(with_hook), "bytesBefore": before_bytes,
            "summariesBytes": grown, "growth": grown / before_bytes, "runs": runs, "scanRuns": scan_runs,
            "flushes": len(without)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, action="append", help="stored events (repeat for several sizes)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scan-runs", type=int, default=3)
    parser.add_argument("--max-database-size", default="2GiB")
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    size = parse_database_size(args.max_database_size)
    results = []
    with tempfile.TemporaryDirectory(prefix="agent-tracker-summaries-") as workdir:
        for events in args.events or [1_000_000]:
            result = measure(events, args.runs, args.scan_runs, size, Path(workdir))
            print(json.dumps(result), flush=True)
            results.append(result)
    Path(args.output).write_text(json.dumps({"results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
