"""Summaries: report and recommend from the per-session summaries vs today's full scan, side by side
on the same generated database, the flush with and without them, and what they add to the file.

bench/bench_summaries.py does the measuring in its own process (it turns the summaries' write
hook on and off, which must not leak into the other sections); its JSON is read back here.
Sizes: 1,000,000 and 2,000,000 stored events (``--quick``: 30,000). 10,000,000 do not fit: the
product's ceiling (maxDatabaseSize 2 GiB) holds about 2.4 million events of the generator's mix.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from . import BENCH_DIR, PYTHON, ROOT, bench_env, check, figure, temp_home, unavailable

SECTION = "summaries"
REPORT_TARGET_S, RECOMMEND_TARGET_S, FLUSH_TARGET, GROWTH_TARGET = 0.100, 0.150, 1.10, 0.05


def keys_for(label: str, events: int) -> list[tuple[str, str]]:
    return [(f"summaries_report_{label}", f"report over {events:,} stored events, from the summaries"),
            (f"scan_report_{label}", f"report over {events:,} stored events, full scan (before this change)"),
            (f"summaries_recommend_{label}", f"recommend over {events:,} stored events, from the summaries"),
            (f"scan_recommend_{label}", f"recommend over {events:,} stored events, full scan (before this change)")]


SIZES = {"small": 1_000_000, "large": 2_000_000}
QUICK_SIZES = {"small": 20_000}
KEYS = [key for label, events in SIZES.items() for key in keys_for(label, events)] + [
    ("summaries_flush_ms", "flush with the summaries"),
    ("nosummaries_flush_ms", "flush without the summaries"),
    ("summaries_flush_ratio", "flush with / without the summaries"),
    ("summaries_hook_ms", "the summaries' share of a flush (CPU inside the transaction)"),
    ("summaries_growth", "database growth from the summaries"),
    ("summaries_build_s", "building the summaries once"),
]


def run(quick: bool, log) -> list[dict[str, Any]]:
    sizes = QUICK_SIZES if quick else SIZES
    figures: list[dict[str, Any]] = []
    with temp_home("summaries-") as home:
        output = home / "summaries.json"
        command = [PYTHON, str(BENCH_DIR / "bench_summaries.py"), "--output", str(output),
                   "--runs", "2" if quick else "5", "--scan-runs", "1" if quick else "3"]
        for events in sizes.values():
            command += ["--events", str(events)]
        done = subprocess.run(command, cwd=ROOT, env=bench_env(home), capture_output=True, text=True, timeout=3600)
        try:
            results = {result["events"]: result for result in json.loads(output.read_text())["results"]}
        except (OSError, ValueError, KeyError) as exc:
            why = f"bench_summaries.py gave no result ({done.returncode}): {(done.stderr or str(exc)).strip()[-300:]}"
            return [unavailable(key, SECTION, name, "", why) for key, name in KEYS]
    for label, events in sizes.items():
        result = results[events]
        report, recommend = result["reportSummariesSeconds"], result["recommendSummariesSeconds"]
        names = dict(keys_for(label, events))
        figures += [
            figure(f"summaries_report_{label}", SECTION, names[f"summaries_report_{label}"], report * 1000, "ms",
                   target="<= 100 ms", holds=check(report, "<=", REPORT_TARGET_S), better="lower",
                   detail=f"median of {result['runs']}; {result['reportScanSeconds'] / report:,.0f}x faster than "
                          f"the scan"),
            figure(f"scan_report_{label}", SECTION, names[f"scan_report_{label}"], result["reportScanSeconds"], "s",
                   better="lower", detail=f"build_report(scan=True), forked helper as the CLI runs it, median of "
                                          f"{result['scanRuns']}"),
            figure(f"summaries_recommend_{label}", SECTION, names[f"summaries_recommend_{label}"], recommend * 1000,
                   "ms", target="<= 150 ms", holds=check(recommend, "<=", RECOMMEND_TARGET_S), better="lower",
                   detail=f"{result['recommendLevels']} level(s) for a python/fastapi folder; "
                          f"{result['recommendScanSeconds'] / recommend:,.0f}x faster than the scan"),
            figure(f"scan_recommend_{label}", SECTION, names[f"scan_recommend_{label}"],
                   result["recommendScanSeconds"], "s", better="lower", detail="recommend_for(scan=True)"),
        ]
    first = results[min(results)]
    figures += [
        figure("summaries_flush_ms", SECTION, "flush with the summaries", first["flushWithSeconds"] * 1000, "ms",
               better="lower", detail=f"median of {first['flushes']} flushes (a push: 10 tool calls and a commit; "
                                      f"then a grade and the session's end), interleaved with the next row's"),
        figure("nosummaries_flush_ms", SECTION, "flush without the summaries", first["flushWithoutSeconds"] * 1000,
               "ms", better="lower", detail="the same flushes, the summaries' hook replaced by one that does nothing"),
        figure("summaries_flush_ratio", SECTION, "flush with / without the summaries", first["flushRatio"], "x",
               target="<= 1.10x", holds=check(first["flushRatio"], "<=", FLUSH_TARGET), better="lower",
               detail="medians of interleaved blocks; the disk's fsync dominates both and drifts on a shared machine"),
        figure("summaries_hook_ms", SECTION, "the summaries' share of a flush", first["hookSeconds"] * 1000, "ms",
               better="lower", detail=f"{first['hookShare']:.0%} of the median flush with them"),
        figure("summaries_growth", SECTION, "database growth from the summaries", first["growth"] * 100, "%",
               target="<= 5 %", holds=check(first["growth"], "<=", GROWTH_TARGET), better="lower",
               detail=f"{first['summariesBytes'] / 2**20:.1f} MiB of pages over {first['bytesBefore'] / 2**20:.0f} MiB "
                      f"in use, {first['summaryRows']:,} rows"),
        figure("summaries_build_s", SECTION, "building the summaries once", first["rebuildSeconds"], "s",
               better="lower", detail=f"over {first['events']:,} events, in one transaction"),
    ]
    return figures
