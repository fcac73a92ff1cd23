"""Decode speed of bridge.lmdbjs on a ~50 MB lmdb-js database (target: >= 20,000 records/s).

Builds the source with the real npm ``lmdb`` (tests/fixtures/lmdbjs/generate.mjs --bench,
flat plugin layout with compression, ~170k agent/commit/communication records) in a
temporary directory, then times LmdbJsSnapshot.read. Needs node and
``npm ci`` in tests/fixtures/lmdbjs.

    .venv/bin/python bench/bench_lmdbjs_read.py [--target-mb 50] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.lmdbjs import LmdbJsSnapshot  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "lmdbjs"


def build_source(directory: Path, target_mb: int) -> Path:
    node = shutil.which("node")
    if not node or not (FIXTURES / "node_modules" / "lmdb").exists():
        sys.exit("needs node and tests/fixtures/lmdbjs/node_modules (run npm ci there)")
    path = directory / f"bench-{target_mb}mb.mdb"
    if path.exists():
        return path
    started = time.perf_counter()
    result = subprocess.run(
        [node, str(FIXTURES / "generate.mjs"), "--bench", str(path), "--target-mb", str(target_mb)],
        cwd=FIXTURES,
        check=True,
        capture_output=True,
        text=True,
    )
    info = json.loads(result.stdout.strip().splitlines()[-1])
    print(
        f"built {path.name}: {info['bytes'] / 1e6:.1f} MB, {info['entries']} entries "
        f"in {time.perf_counter() - started:.1f}s"
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-mb", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build/reuse the source in this directory")
    parser.add_argument("--profile", action="store_true", help="print the top functions")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        directory = args.keep or Path(temp)
        directory.mkdir(parents=True, exist_ok=True)
        path = build_source(directory, args.target_mb)
        size = os.path.getsize(path)
        best = None
        for _ in range(args.repeat):
            started = time.perf_counter()
            snap = LmdbJsSnapshot.read(path)
            elapsed = time.perf_counter() - started
            records = sum(len(entries) for entries in snap.databases.values())
            failed = sum(1 for entries in snap.databases.values() for e in entries if e.error)
            best = elapsed if best is None else min(best, elapsed)
            print(
                f"read {records} records ({failed} undecodable) from {size / 1e6:.1f} MB "
                f"in {elapsed:.2f}s: {records / elapsed:,.0f} records/s, {size / 1e6 / elapsed:.1f} MB/s"
            )
        print(f"best: {records / best:,.0f} records/s (target >= 20,000)")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            LmdbJsSnapshot.read(path)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
