"""Run every bench side by side and print one table of medians, ratios and targets.

    .venv/bin/python -m bench                 # full run (< 5 min), writes bench/results/latest.json
    .venv/bin/python -m bench --quick         # CI smoke (< 60 s), writes bench/results/latest-quick.json
    .venv/bin/python -m bench --compare OLD.json          # run, then print deltas against OLD
    .venv/bin/python -m bench --compare OLD.json NEW.json # only compare two result files
    .venv/bin/python -m bench --only session,cold         # some sections
    .venv/bin/python bench/run.py ...                     # same thing

Exit status 0 whatever the figures (a measurement, not a gate) unless --check is given:
then 1 when a target does not hold. Every spawned process gets a temporary HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "bench"

from bench import BENCH_DIR, ROOT, unavailable  # noqa: E402
from bench.summaries_section import KEYS as SUMMARIES_KEYS  # noqa: E402

RESULTS_DIR = BENCH_DIR / "results"
README = BENCH_DIR / "README.md"
TABLE_START, TABLE_END = "<!-- results:start -->", "<!-- results:end -->"
# The project README shows a summary: every target, plus the figures a target is measured against.
PROJECT_README = ROOT / "README.md"
SUMMARY_START, SUMMARY_END = "<!-- bench-table -->", "<!-- /bench-table -->"
SUMMARY_KEYS = (
    "session_buffer_rate", "session_flush_ms", "session_transactions", "baseline_a_total_ms",
    "baseline_b_flush_ms", "session_flush_vs_b_ceiling", "session_total_vs_a_ceiling", "session_flush_vs_b",
    "session_total_vs_a", "replay_bridge", "replay_bridge_nosync", "replay_group_commit_cost", "replay_floor", "node_bridge", "node_floor", "node_bridge_vs_floor",
    "cold_bridge_ms", "cold_pygls_ms", "cold_bridge_vs_pygls", "idle_rss_mib", "report_seconds",
    "migration_records_per_s", "opencode_parts_per_s", "opencode_import_parts_per_s", "hook_after_p50_us",
)

# Every figure the bench prints, by section (stable keys: --compare and the smoke test use them).
SECTIONS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "session": ("bench.session_stream", [
        ("session_events", "session: events in the stream"),
        ("session_buffer_rate", "session: bridge, events/s while buffering"),
        ("session_flush_ms", "session: bridge flush per push (client-observed)"),
        ("session_transactions", "session: bridge write transactions"),
        ("session_total_ms", "session: bridge, whole session"),
        ("baseline_a_total_ms", "(a) old write pattern: one durable txn per event, whole session"),
        ("baseline_b_flush_ms", "(b) old flush pattern: one txn per buffered row, per push"),
        ("durable_commit_ms", "one tiny durable LMDB commit on this disk"),
        ("floor_flush_ms", "floor: the same rows in one bare txn, per push"),
        ("floor_session_ms", "floor: session stream through floor server + floor flushes"),
        ("session_flush_vs_b_ceiling", "ceiling: flush speed-up vs (b) at the floor"),
        ("session_total_vs_a_ceiling", "ceiling: whole-session speed-up vs (a) at the floor"),
        ("session_flush_vs_b", "session: flush speed-up vs (b)"),
        ("session_total_vs_a", "session: whole-session speed-up vs (a)"),
    ]),
    "transport": ("bench.transport", [
        ("replay_bridge", "replay: bridge (journal on, group commit on), notifications/s"),
        ("replay_bridge_nosync", "replay: bridge (journal on, group commit off), notifications/s"),
        ("replay_group_commit_cost", "replay: group commit on / off"),
        ("replay_floor", "replay: floor (asyncio+orjson), notifications/s"),
        ("replay_pygls", "replay: stock pygls (default reader), notifications/s"),
        ("replay_bridge_vs_floor", "replay: bridge / floor"),
        ("replay_bridge_vs_pygls", "replay: bridge / stock pygls"),
        ("node_bridge", "node client: bridge, notifications/s"),
        ("node_floor", "node client: floor, notifications/s"),
        ("node_pygls", "node client: stock pygls, notifications/s"),
        ("node_bridge_vs_floor", "node client: bridge / floor"),
        ("rtt_bridge_p50", "agent.status round trip p50: bridge"),
        ("rtt_bridge_p99", "agent.status round trip p99: bridge"),
        ("rtt_floor_p50", "request round trip p50: floor"),
        ("rtt_floor_p99", "request round trip p99: floor"),
        ("rtt_pygls_p50", "request round trip p50: stock pygls"),
        ("rtt_pygls_p99", "request round trip p99: stock pygls"),
    ]),
    "cold": ("bench.cold_start", [
        ("cold_bridge_ms", "cold start: bridge, spawn to initialize result"),
        ("cold_pygls_ms", "cold start: bare pygls JsonRPCServer, spawn to initialize result"),
        ("cold_python_ms", "cold start: python -c pass, spawn to exit"),
        ("cold_bridge_vs_pygls", "cold start: bridge / bare pygls"),
        ("idle_rss_mib", "bridge idle RSS after initialize"),
    ]),
    "scale": ("bench.scale", [
        ("db_mib_per_100k_events", "database size per 100,000 hook events"),
        ("report_seconds", "report over 1,000,000 stored events"),
        ("report_seconds_single", "report over 1,000,000 stored events, in one process (as in the bridge)"),
        ("stored_bytes_per_100k", "database size per 100,000 stored events (generator)"),
        ("migration_records_per_s", "migration: lmdb-js records decoded/s"),
        ("opencode_parts_per_s", "import-opencode: OpenCode history parts read/s"),
        ("opencode_import_parts_per_s", "import-opencode: OpenCode history parts imported/s"),
        ("hook_after_p50_us", "plugin hook tool.execute.after p50"),
        ("hook_after_p99_us", "plugin hook tool.execute.after p99"),
    ]),
    "summaries": ("bench.summaries_section", SUMMARIES_KEYS),
}
FIGURE_KEYS = [key for _, keys in SECTIONS.values() for key, _ in keys]
# Baselines, floors and ceilings describe the machine, not the bridge: --compare shows their
# deltas (a changed machine explains changed ratios) but calls none of them better or worse.
REFERENCE_KEYS = {
    "session_events", "baseline_a_total_ms", "baseline_b_flush_ms", "durable_commit_ms", "floor_flush_ms",
    "floor_session_ms", "session_flush_vs_b_ceiling", "session_total_vs_a_ceiling", "replay_floor",
    "replay_pygls", "node_floor", "node_pygls", "rtt_floor_p50", "rtt_floor_p99", "rtt_pygls_p50",
    "rtt_pygls_p99", "cold_pygls_ms", "cold_python_ms",
}


# -- machine ----------------------------------------------------------------------------------------

def _version(command: list[str]) -> str | None:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else None


def machine_info() -> dict[str, Any]:
    cpu = None
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        cpu = match.group(1).strip() if match else None
    except OSError:
        pass
    packages = {}
    for name in ("pygls", "lmdb", "orjson", "cattrs"):
        try:
            from importlib.metadata import version
            packages[name] = version(name)
        except Exception:
            packages[name] = None
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
        "node": _version(["node", "--version"]), "npm": _version(["npm", "--version"]),
        "platform": platform.platform(), "packages": packages,
        "vscode_jsonrpc": _node_package_version(),
    }


def _node_package_version() -> str | None:
    try:
        return json.loads((BENCH_DIR / "node_modules" / "vscode-jsonrpc" / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


# -- formatting -------------------------------------------------------------------------------------

def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit in ("msg/s", "events/s", "records/s", "parts/s", "events", "txns"):
        text = f"{value:,.0f}"
    elif unit == "x":
        text = f"{value:.2f}" if value < 10 else f"{value:.1f}"
    elif unit in ("ms", "µs", "s"):
        text = f"{value:.3g}" if value < 100 else f"{value:,.0f}"
    else:
        text = f"{value:.2f}" if value < 100 else f"{value:,.0f}"
    return f"{text} {unit}" if unit not in ("x",) else f"{text}x"


def holds_text(item: dict[str, Any]) -> str:
    if item["value"] is None:
        return "n/a"
    if item["holds"] is None:
        return "-" if not item["target"] else "?"
    return "yes" if item["holds"] else "NO"


def table_rows(figures: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(f["name"], fmt_value(f["value"], f["unit"]), f["target"] or "", holds_text(f)) for f in figures]


def render_text(figures: list[dict[str, Any]]) -> str:
    header = ("figure", "median", "target", "holds")
    rows = table_rows(figures)
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), line]
    section = None
    for item, row in zip(figures, rows):
        if item["section"] != section:
            section = item["section"]
            out.append(f"[{section}]")
        out.append("  ".join((row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]),
                              row[3])))
    out.append("")
    out.append("notes:")
    for item in figures:
        if item["detail"]:
            out.append(f"  {item['name']}: {item['detail']}")
    return "\n".join(out)


def run_line(result: dict[str, Any]) -> str:
    m = result["machine"]
    return (f"Run {result['finished_at']} ({'--quick' if result['quick'] else 'full'}, "
            f"{result['seconds']:.0f} s): {m['nproc']} cores, {m['cpu']}, Python {m['python']}, "
            f"Node {m['node']}, pygls {m['packages'].get('pygls')}, py-lmdb {m['packages'].get('lmdb')}, "
            f"vscode-jsonrpc {m.get('vscode_jsonrpc')}.")


def render_markdown(result: dict[str, Any]) -> str:
    lines = [run_line(result), "", "| figure | median | target | holds | notes |", "|---|---:|---|---|---|"]
    for item, row in zip(result["figures"], table_rows(result["figures"])):
        detail = item["detail"].replace("|", "\\|")
        lines.append(f"| {row[0]} | {row[1]} | {row[2]} | {row[3]} | {detail} |")
    return "\n".join(lines)


def render_summary(result: dict[str, Any]) -> str:
    figures = [f for f in result["figures"] if f["key"] in SUMMARY_KEYS]
    lines = [run_line(result), "", "| figure | median | target | holds |", "|---|---:|---|---|"]
    lines += [f"| {row[0]} | {row[1]} | {row[2]} | {row[3]} |" for row in table_rows(figures)]
    return "\n".join(lines)


def render_compare(old: dict[str, Any], new: dict[str, Any]) -> str:
    before = {f["key"]: f for f in old["figures"]}
    header = ("figure", "old", "new", "delta", "")
    rows = []
    for item in new["figures"]:
        prior = before.get(item["key"])
        old_value = prior["value"] if prior else None
        delta, verdict = "", ""
        if old_value not in (None, 0) and item["value"] is not None:
            change = (item["value"] - old_value) / abs(old_value) * 100
            delta = f"{change:+.1f}%"
            if item.get("better") and item["key"] not in REFERENCE_KEYS and abs(change) >= 5:
                improved = (change > 0) == (item["better"] == "higher")
                verdict = "better" if improved else "WORSE"
        rows.append((item["name"], fmt_value(old_value, item["unit"]), fmt_value(item["value"], item["unit"]),
                     delta, verdict))
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(5)]
    out = [f"compare: {old.get('finished_at')} ({'quick' if old.get('quick') else 'full'}) -> "
           f"{new.get('finished_at')} ({'quick' if new.get('quick') else 'full'}); "
           f"changes under 5% are noise on this machine",
           "  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    for row in rows:
        out.append("  ".join((row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2]),
                              row[3].rjust(widths[3]), row[4])))
    return "\n".join(out)


# -- running ----------------------------------------------------------------------------------------

def run_section(name: str, quick: bool, log: Callable[[str], None]) -> list[dict[str, Any]]:
    module_name, expected = SECTIONS[name]
    started = time.perf_counter()
    try:
        module = __import__(module_name, fromlist=["run"])
        figures = module.run(quick, log)
        error = None
    except Exception as exc:  # a broken section must not hide the others
        figures, error = [], f"section failed: {type(exc).__name__}: {exc}"
        log(traceback.format_exc())
    by_key = {f["key"]: f for f in figures}
    ordered = []
    for key, label in expected:
        ordered.append(by_key.pop(key, None) or unavailable(key, name, label, "", error or "not measured"))
    ordered += by_key.values()  # anything extra a section chose to add
    log(f"{name}: {time.perf_counter() - started:.1f} s")
    return ordered


def replace_between(path: Path, start: str, end: str, content: str) -> bool:
    if not path.exists():
        return False
    text = path.read_text()
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{content}\n{end}{tail}")
    return True


def update_readmes(result: dict[str, Any]) -> list[str]:
    """The full table into bench/README.md, the summary into README.md; the files updated."""
    updated = []
    if replace_between(README, TABLE_START, TABLE_END, render_markdown(result)):
        updated.append("bench/README.md")
    if replace_between(PROJECT_README, SUMMARY_START, SUMMARY_END, render_summary(result)):
        updated.append("README.md")
    return updated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: smaller streams, fewer runs (< 60 s)")
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--compare", nargs="+", metavar="JSON",
                        help="OLD.json: compare this run with it; OLD.json NEW.json: only compare the two")
    parser.add_argument("--output", type=Path, help="results file (default bench/results/latest.json, "
                                                     "latest-quick.json with --quick)")
    parser.add_argument("--no-save", action="store_true", help="write no results file")
    parser.add_argument("--update-readme", action="store_true",
                        help="put the table into bench/README.md and its summary into README.md")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target does not hold")
    args = parser.parse_args(argv)

    if args.compare and len(args.compare) == 2:
        old, new = (json.loads(Path(p).read_text()) for p in args.compare)
        print(render_compare(old, new))
        return 0
    if args.compare and len(args.compare) > 2:
        parser.error("--compare takes OLD.json, or OLD.json NEW.json")

    sections = list(SECTIONS)
    if args.only:
        sections = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [s for s in sections if s not in SECTIONS]
        if unknown:
            parser.error(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")

    began = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f}s] {message}", file=sys.stderr, flush=True)

    machine = machine_info()
    log(f"machine: {machine['nproc']} cores, {machine['cpu']}, Python {machine['python']}, Node {machine['node']}"
        f"{' (quick)' if args.quick else ''}")
    figures: list[dict[str, Any]] = []
    for name in sections:
        figures += run_section(name, args.quick, log)
    result = {
        "version": 1, "quick": args.quick, "sections": sections,
        "finished_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": time.perf_counter() - began, "machine": machine, "figures": figures,
    }
    print(render_text(figures))
    missed = [f for f in figures if f["holds"] is False]
    print(f"\n{len(figures)} figures in {result['seconds']:.0f} s; targets: "
          f"{sum(f['holds'] is True for f in figures)} hold, {len(missed)} do not"
          + (f" ({', '.join(f['key'] for f in missed)})" if missed else "")
          + f", {sum(f['value'] is None for f in figures)} not measured")

    if not args.no_save:
        output = args.output or RESULTS_DIR / ("latest-quick.json" if args.quick else "latest.json")
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        stamp = result["finished_at"].replace(":", "").replace("-", "")
        if args.output is None:
            shutil.copyfile(output, RESULTS_DIR / f"{'quick-' if args.quick else ''}{stamp}.json")
        print(f"results: {output}")
    if args.update_readme:
        updated = update_readmes(result)
        print(f"tables updated: {', '.join(updated)}" if updated else "no README has the table markers: not updated")
    if args.compare:
        print()
        print(render_compare(json.loads(Path(args.compare[0]).read_text()), result))
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
