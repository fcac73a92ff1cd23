"""Scale: the report over many stored events, database size, migration and plugin-hook speed.

* Database size per 100,000 hook events: the session-stream mix (bench/session_stream.py),
  one session after another, through the real TrackingService (``handle`` + ``flush`` at
  each push and delete, in-process); then the file is stat'ed.
* Report over 1,000,000 stored events: bench/generate_events.py writes the data set and
  bench/bench_report.py times the report (both another engineer's; run as subprocesses,
  their JSON read back). Printed as "not available yet" while they are missing.
* Migration records/s: bench/bench_lmdbjs_read.py (lmdb-js decode speed), same treatment.
* Plugin hook overhead: bench/bench_plugin_hooks.mjs (Node), same treatment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from . import BENCH_DIR, PYTHON, ROOT, bench_env, check, figure, temp_home, unavailable

SECTION = "scale"
MiB = 1024 * 1024


def database_size(events: int) -> dict[str, Any]:
    """Feed ``events`` hook events through TrackingService into a fresh database; stat it."""
    from bridge.protocol import params as m
    from bridge.config import BridgeConfig
    from bridge.store import Store
    from bridge.tracking.service import TrackingService

    from .session_stream import make_project, session_events

    tmp = Path(tempfile.mkdtemp(prefix="agent-tracker-size-"))
    try:
        db_path = tmp / "agent-tracker.lmdb"
        store = Store.open(BridgeConfig(database_path=str(db_path)))
        assert store.available, store.error
        project = str(make_project(tmp))
        service = TrackingService(store, BridgeConfig().scoring, default_directory=project)
        template = session_events(project)
        fed, session_no, started = 0, 0, time.perf_counter()
        while fed < events:
            sid = f"bench-size-{session_no}"
            for method, params in template:
                if fed >= events:
                    break
                params = dict(params, sessionID=sid)
                if "commitHash" in params:  # a fresh, random-looking hash per session
                    params["commitHash"] = hashlib.sha1(f"{session_no}-{params['commitHash']}".encode()).hexdigest()
                if "callID" in params:
                    params["callID"] = f"{session_no}-{params['callID']}"
                service.handle(method, m.structure_params(method, params))
                fed += 1
                if service.flush_requested:
                    service.flush()
            session_no += 1
        service.flush()
        elapsed = time.perf_counter() - started
        store.close()
        return {"events": fed, "sessions": session_no, "bytes": db_path.stat().st_size,
                "used": used_bytes(db_path), "seconds": elapsed}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def used_bytes(db_path: Path) -> int:
    """Bytes of B-tree pages in use (the file also holds free and never-reused pages)."""
    import lmdb
    env = lmdb.open(str(db_path), subdir=False, readonly=True, lock=True, max_dbs=16)
    try:
        total = 0
        with env.begin() as txn:
            names = [k for k, _ in txn.cursor()]
            for name in names:
                stat = txn.stat(env.open_db(name, txn=txn, create=False))
                total += stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]
        return total * env.stat()["psize"]
    finally:
        env.close()


def _last_json(text: str) -> Any:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def _run(command: list[str], timeout: float, cwd: Path = ROOT, env: dict[str, str] | None = None):
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def report_bench(quick: bool, home: Path, log) -> list[dict[str, Any]]:
    events = 100_000 if quick else 1_000_000
    name = f"report over {events:,} stored events"
    generator, reporter = BENCH_DIR / "generate_events.py", BENCH_DIR / "bench_report.py"
    figures: list[dict[str, Any]] = []
    if not generator.exists() or not reporter.exists():
        missing = ", ".join(p.name for p in (generator, reporter) if not p.exists())
        return [unavailable("report_seconds", SECTION, name, "s", f"not available yet ({missing} missing)",
                            target="<= 1 s", better="lower"),
                unavailable("report_seconds_single", SECTION, f"report over {events:,} stored events, in one "
                            "process (as in the bridge)", "s", f"not available yet ({missing} missing)",
                            better="lower"),
                unavailable("stored_bytes_per_100k", SECTION, "database size per 100,000 stored events (generator)",
                            "MiB", f"not available yet ({missing} missing)", better="lower")]
    env = bench_env(home)
    db_path = home / "scale" / "agent-tracker.lmdb"
    db_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    generated = _run([PYTHON, str(generator), "--database", str(db_path), "--events", str(events)], 900, env=env)
    if generated.returncode != 0:
        why = f"generate_events.py failed: {generated.stderr.strip()[-300:]}"
        return [unavailable("report_seconds", SECTION, name, "s", why, target="<= 1 s", better="lower"),
                unavailable("report_seconds_single", SECTION, f"report over {events:,} stored events, in one "
                            "process (as in the bridge)", "s", why, better="lower"),
                unavailable("stored_bytes_per_100k", SECTION, "database size per 100,000 stored events (generator)",
                            "MiB", why, better="lower")]
    generation_s = time.perf_counter() - started
    log(f"scale: generated {events:,} stored events in {generation_s:.1f} s")
    size = db_path.stat().st_size
    used = used_bytes(db_path)
    figures.append(figure("stored_bytes_per_100k", SECTION, "database size per 100,000 stored events (generator)",
                          size / MiB / (events / 100_000), "MiB", better="lower",
                          detail=f"file {size / MiB:.1f} MiB for {events:,}, of which B-tree pages in use "
                                 f"{used / MiB:.1f} MiB (bench/generate_events.py, "
                                 f"{events / generation_s:,.0f} records/s written)"))
    output = home / "bench_report.json"
    runs = 3 if quick else 5
    reported = _run([PYTHON, str(reporter), "--database", str(db_path), "--runs", str(runs), "--decoder", "auto",
                     "--output", str(output)], 900, env=env)
    single_name = f"report over {events:,} stored events, in one process (as in the bridge)"
    try:
        results = json.loads(output.read_text())["results"]
        # The CLI (`agent-tracker report`) counts in a helper process; the bridge in one.
        cli = next((r for r in results if r.get("parallel")), results[0])
        single = next((r for r in results if r.get("parallel") is False), None)
        seconds = float(cli["medianWallSeconds"])
    except (OSError, ValueError, KeyError, IndexError, TypeError, StopIteration):
        why = f"bench_report.py gave no result ({reported.returncode}): {(reported.stderr or reported.stdout).strip()[-300:]}"
        figures.append(unavailable("report_seconds", SECTION, name, "s", why, target="<= 1 s", better="lower"))
        figures.append(unavailable("report_seconds_single", SECTION, single_name, "s", why, better="lower"))
        return figures
    mode = "helper process, as the CLI runs it" if cli.get("parallel") else "one process"
    figures.append(figure(
        "report_seconds", SECTION, name, seconds, "s", target="<= 1 s", holds=check(seconds, "<=", 1.0),
        better="lower", detail=f"build_report ({mode}), decoder {cli.get('decoder')}, median of {runs} runs "
                               f"(CPU in the main process {cli.get('medianCpuSeconds', 0):.2f} s; bench/bench_report.py)"))
    if single is not None:
        figures.append(figure(
            "report_seconds_single", SECTION, single_name, float(single["medianWallSeconds"]), "s",
            better="lower", detail=f"decoder {single.get('decoder')}, median of {runs} runs, "
                                   f"CPU {single.get('medianCpuSeconds', 0):.2f} s"))
    else:
        figures.append(unavailable("report_seconds_single", SECTION, single_name, "s",
                                   "bench_report.py measured no one-process run", better="lower"))
    return figures


def _pick_seconds(data: Any) -> float | None:
    """The report time from bench_report.py's JSON (median preferred)."""
    if not isinstance(data, dict):
        return None
    for key in ("median_s", "median_seconds", "seconds", "report_s", "elapsed_s"):
        if isinstance(data.get(key), (int, float)):
            return float(data[key])
    for key in ("median_ms", "report_ms", "ms"):
        if isinstance(data.get(key), (int, float)):
            return float(data[key]) / 1000
    return None


def migration_bench(quick: bool, home: Path, log) -> dict[str, Any]:
    name = "migration: lmdb-js records decoded/s"
    script = BENCH_DIR / "bench_lmdbjs_read.py"
    if not script.exists():
        return unavailable("migration_records_per_s", SECTION, name, "records/s",
                           "not available yet (bench_lmdbjs_read.py missing)", target=">= 20,000/s",
                           better="higher")
    args = ["--target-mb", "5", "--repeat", "1"] if quick else ["--target-mb", "50", "--repeat", "3"]
    result = _run([PYTHON, str(script), *args], 900, env=bench_env(home))
    data = _last_json(result.stdout)
    rate = None
    if isinstance(data, dict):
        rate = next((float(data[k]) for k in ("records_per_s", "recordsPerSecond", "best_records_per_s")
                     if isinstance(data.get(k), (int, float))), None)
    if rate is None:
        match = re.search(r"best: ([\d,]+) records/s", result.stdout)
        rate = float(match.group(1).replace(",", "")) if match else None
    if rate is None:
        return unavailable("migration_records_per_s", SECTION, name, "records/s",
                           f"bench_lmdbjs_read.py gave no figure ({result.returncode}): "
                           f"{(result.stderr or result.stdout).strip()[-300:]}",
                           target=">= 20,000/s", better="higher")
    source = re.search(r"from ([\d.]+ MB)", result.stdout)
    return figure("migration_records_per_s", SECTION, name, rate, "records/s", target=">= 20,000/s",
                  holds=check(rate, ">=", 20_000), better="higher",
                  detail=f"bench/bench_lmdbjs_read.py {' '.join(args)} (best run"
                         f"{', ' + source.group(1) + ' source' if source else ''})")


def plugin_hooks_bench(quick: bool, home: Path, log) -> list[dict[str, Any]]:
    name = "plugin hook tool.execute.after p50"
    script = BENCH_DIR / "bench_plugin_hooks.mjs"
    keys = ("hook_after_p50_us", "hook_after_p99_us")
    if not script.exists() or shutil.which("node") is None:
        why = "not available yet (bench_plugin_hooks.mjs missing)" if not script.exists() else "node not installed"
        return [unavailable(keys[0], SECTION, name, "µs", why, target="<= 50 µs", better="lower"),
                unavailable(keys[1], SECTION, "plugin hook tool.execute.after p99", "µs", why, better="lower")]
    calls = "2000" if quick else "20000"
    result = _run(["node", str(script), "--json", "--calls", calls], 600,
                  cwd=ROOT / "examples" / "opencode-plugin", env=bench_env(home))
    data = _last_json(result.stdout)
    if not isinstance(data, dict) or not data.get("results"):
        why = f"bench_plugin_hooks.mjs failed ({result.returncode}): {(result.stderr or result.stdout).strip()[-300:]}"
        return [unavailable(keys[0], SECTION, name, "µs", why, target="<= 50 µs", better="lower"),
                unavailable(keys[1], SECTION, "plugin hook tool.execute.after p99", "µs", why, better="lower")]
    main = data["results"][0]
    others = "; ".join(f"{r['hook']}: p50 {r['p50_us']} µs" for r in data["results"][1:])
    return [
        figure(keys[0], SECTION, name, main["p50_us"], "µs", target="<= 50 µs",
               holds=check(main["p50_us"], "<=", 50), better="lower",
               detail=f"{main['hook']}, {main['calls']:,} calls, real bridge (bench/bench_plugin_hooks.mjs)"),
        figure(keys[1], SECTION, "plugin hook tool.execute.after p99", main["p99_us"], "µs", better="lower",
               detail=f"amortized {main['amortized_us']} µs/call; {others}"),
    ]


def run(quick: bool, log) -> list[dict[str, Any]]:
    figures: list[dict[str, Any]] = []
    events = 20_000 if quick else 100_000
    size = database_size(events)
    per_100k = size["bytes"] / MiB * 100_000 / size["events"]
    log(f"scale: {size['events']:,} hook events through TrackingService in {size['seconds']:.1f} s, "
        f"{size['bytes'] / MiB:.2f} MiB")
    figures.append(figure(
        "db_mib_per_100k_events", SECTION, "database size per 100,000 hook events", per_100k, "MiB",
        better="lower", detail=f"{size['events']:,} events ({size['sessions']} sessions of the session mix) "
                               f"through TrackingService.handle + flush: file {size['bytes'] / MiB:.2f} MiB, "
                               f"pages in use {size['used'] / MiB:.2f} MiB"
                               + ("; scaled from 20,000 (--quick)" if quick else "")))
    with temp_home("scale-") as home:
        figures += report_bench(quick, home, log)
        figures.append(migration_bench(quick, home, log))
        figures += plugin_hooks_bench(quick, home, log)
    return figures


if __name__ == "__main__":  # pragma: no cover - handy for a single section
    for item in run(bool(os.environ.get("QUICK")), print):
        print(item)
