"""A hostile environment: unusable database paths, a read-only home, corrupt files, odd path names.

The tests run as root here, so chmod cannot take write access away. Techniques used instead:
* a read-only home: the bridge runs in its own mount namespace (``unshare -m``) where the home is
  bind-mounted read-only (EROFS, which root cannot bypass); skipped where unshare is not allowed;
* a path whose parent is a regular file (ENOTDIR), a path that is a directory, a character device
  (``mknod``, the same device as /dev/null), a FIFO, a PNG, a SQLite database, an LMDB file with
  corrupt meta pages, and an LMDB file whose record bytes were overwritten (bit rot: LMDB has no
  checksums, so it opens).

Every time: initialize is answered with ``available: false`` and an error naming the path, a toast
says tracking is disabled, later requests are answered, events are journaled when the journal
folder is writable, the bridge exits 0, and the hostile file is left byte for byte as it was.
"""

from __future__ import annotations

import asyncio
import os
import random
import shlex
import shutil
import sqlite3
import stat
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from reliability import (
    ROOT,
    BridgeProcess,
    Model,
    Timer,
    Workload,
    actual_view,
    base_seed,
    bridge_env,
    bump,
    drain_stderr,
    expected_view,
    invariant_violations,
    journal_events,
    model_through,
    read_db,
    record,
    send_steps,
    spawn,
    start_bridge,
    wait_exit,
)

pytestmark = pytest.mark.reliability


def _parent_is_a_file(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("not a folder\n")
    return tmp / "notes.txt" / "agent-tracker.lmdb"


def _a_directory(tmp: Path) -> Path:
    (tmp / "a folder").mkdir()
    (tmp / "a folder" / "keep.txt").write_text("mine\n")
    return tmp / "a folder"


def _a_char_device(tmp: Path) -> Path:
    path = tmp / "null-device"
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the device /dev/null is
    return path


def _a_fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "a-fifo")
    return tmp / "a-fifo"


def _a_png(tmp: Path) -> Path:
    path = tmp / "picture.png"
    rng = random.Random(7)
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(rng.randrange(256) for _ in range(20_000)))
    return path


def _a_sqlite_file(tmp: Path) -> Path:
    path = tmp / "other.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("create table invoices (id integer primary key, total real)")
    connection.executemany("insert into invoices (total) values (?)", [(i * 1.5,) for i in range(500)])
    connection.commit()
    connection.close()
    return path


async def _corrupt_meta_pages(tmp: Path) -> Path:
    path = tmp / "corrupt.lmdb"
    await _make_database(tmp, path)
    data = bytearray(path.read_bytes())
    data[0:8192] = bytes(random.Random(3).randrange(256) for _ in range(8192))  # both meta pages
    path.write_bytes(bytes(data))
    return path


async def _make_database(tmp: Path, path: Path) -> None:
    """A real database written by a real bridge (so the corruption hits real pages)."""
    home = tmp / "maker-home"
    home.mkdir(exist_ok=True)
    bridge, _, _ = await spawn(home, tmp, databasePath=str(path))
    try:
        for i in range(200):
            bridge.notify("tool.executed", {"sessionID": "m", "callID": f"c{i}", "tool": "read", "success": True,
                                            "agentId": "victim"})
        bridge.notify("activity.logged", {"kind": "note", "agentId": "victim", "description": "x" * 20_000})
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()


HOSTILE: dict[str, tuple[Callable[[Path], Any], bool]] = {
    # name: (make the path, journal folder writable)
    "parent is a regular file (ENOTDIR)": (_parent_is_a_file, False),
    "path is a directory": (_a_directory, True),
    "path is a character device": (_a_char_device, True),
    "path is a PNG image": (_a_png, True),
    "path is a SQLite database": (_a_sqlite_file, True),
    "LMDB file with corrupt meta pages": (_corrupt_meta_pages, True),
}


def snapshot_tree(root: Path) -> dict[str, Any]:
    out = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        kind = "dir" if stat.S_ISDIR(info.st_mode) else "file" if stat.S_ISREG(info.st_mode) else "other"
        out[str(path.relative_to(root))] = (kind, path.read_bytes() if kind == "file" else None)
    return out


async def exercise_disabled(bridge: BridgeProcess, init: dict[str, Any], target: Path, journal_writable: bool) -> dict[str, Any]:
    """What the contract promises once tracking is disabled: answers, a toast, journaled events, exit 0."""
    database = init["database"]
    assert database["available"] is False and database["readOnly"] is True, database
    error = database["error"]
    assert str(target) in error or str(target.parent) in error, f"the error must name the path: {error}"
    assert len(error) < 600 and "Traceback" not in error
    toasts = bridge.notifications_of("toast")
    assert any(t["variant"] == "error" and "tracking disabled" in t["message"] for t in toasts), toasts
    journal = init["journal"]["path"]
    assert (journal is not None) == journal_writable, init["journal"]
    if not journal_writable:
        assert any("journal" in log["message"].lower() for log in bridge.notifications_of("log")), \
            "no warning that events cannot be journaled"
    bridge.notify("session.created", {"sessionID": "h1", "agent": {"id": "build"}})
    for i in range(5):
        bridge.notify("tool.executed", {"sessionID": "h1", "callID": f"c{i}", "tool": "read", "success": True})
    status = await bridge.request("agent.status", {"agentId": "build"})
    assert status["experiencePoints"] == 5.0 and status["pendingChanges"] == 5  # read-your-writes, in memory
    flushed = await bridge.request("flush")
    assert flushed["transactions"] == 0 and flushed["errors"], flushed
    if journal_writable:
        assert len(journal_events(Path(journal))) == 6, "events must still be journaled when the journal folder is writable"
    shutdown = await bridge.request("shutdown")
    bridge.notify("exit")
    assert await bridge.wait() == 0
    assert shutdown["errors"]
    return {"error": error, "toasts": bridge.notifications_of("toast")}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_an_unusable_database_path_disables_tracking_cleanly(isolated_home: Path, tmp_path: Path, case: str) -> None:
    make, journal_writable = HOSTILE[case]
    made = make(tmp_path)
    target: Path = await made if asyncio.iscoroutine(made) else made
    before = snapshot_tree(tmp_path)
    bridge, init, _ = await spawn(isolated_home, tmp_path, databasePath=str(target))
    try:
        outcome = await exercise_disabled(bridge, init, target, journal_writable)
    finally:
        bridge.kill()
    after = snapshot_tree(tmp_path)
    # Allowed: the journal folder, and LMDB's lock file beside the path (in the database's folder).
    ours = (f"{target.name}-journal", f"{target.name}-lock")
    created = {p for p in after if p not in before and not p.startswith(ours)}
    assert created == set(), f"the bridge created files outside its database folder and journal: {created}"
    changed = {p for p, v in before.items() if after.get(p) != v and not p.startswith(ours)}
    assert changed == set(), f"the hostile file was modified: {changed}"
    lock_litter = sorted(p for p in after if p not in before and p.startswith(f"{target.name}-lock"))
    bump("hostile", "paths survived")
    record("hostile", **{f"error: {case}": outcome["error"][:160]})
    if lock_litter:
        record("hostile", **{f"lock file left beside: {case}": lock_litter})


async def test_a_read_only_home_disables_tracking_cleanly(tmp_path: Path) -> None:
    """HOME bind-mounted read-only in the bridge's own mount namespace: EROFS even for root."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    home = tmp_path / "read-only home"
    (home / ".config").mkdir(parents=True)
    (home / ".config" / "opencode.json").write_text("{}\n")
    quoted = shlex.quote(str(home))
    script = (f"mount --bind {quoted} {quoted} && mount -o remount,bind,ro {quoted} && "
              f"exec {shlex.quote(sys.executable)} -m bridge serve")
    probe = await asyncio.create_subprocess_exec("unshare", "-m", "sh", "-c", f"mount --bind {quoted} {quoted} && true",
                                                 stderr=asyncio.subprocess.PIPE)
    if await probe.wait() != 0:
        pytest.skip(f"no mount namespaces here: {(await probe.stderr.read()).decode()[:200]}")
    process = await asyncio.create_subprocess_exec(
        "unshare", "-m", "sh", "-c", script, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=bridge_env(home), cwd=str(ROOT))
    bridge = BridgeProcess(process)
    drain_stderr(bridge)
    before = snapshot_tree(home)
    try:
        init = await bridge.initialize(tmp_path)
        target = home / ".config" / "opencode" / "agent-tracker.lmdb"
        assert "Read-only file system" in init["database"]["error"], init["database"]
        await exercise_disabled(bridge, init, target, journal_writable=False)
    finally:
        bridge.kill()
    assert snapshot_tree(home) == before
    record("hostile", read_only_home="unshare -m + read-only bind mount (EROFS)")


async def test_a_fifo_at_the_database_path_is_refused_not_a_hang(isolated_home: Path, tmp_path: Path) -> None:
    target = _a_fifo(tmp_path)
    bridge = await start_bridge(isolated_home, env=bridge_env(isolated_home))
    drain_stderr(bridge)
    try:
        init = await bridge.request("initialize", {"clientInfo": {"name": "t"}, "config": {"databasePath": str(target)}},
                                    timeout=20)
        await exercise_disabled(bridge, init, target, journal_writable=True)
    finally:
        bridge.kill()


async def test_tracking_disabled_is_told_once(isolated_home: Path, tmp_path: Path) -> None:
    target = _a_directory(tmp_path)
    bridge, init, _ = await spawn(isolated_home, tmp_path, databasePath=str(target))
    try:
        outcome = await exercise_disabled(bridge, init, target, journal_writable=True)
    finally:
        bridge.kill()
    assert len(outcome["toasts"]) == 1, outcome["toasts"]


async def test_a_corrupt_record_is_a_clear_error_and_loses_no_event(isolated_home: Path, tmp_path: Path) -> None:
    target = tmp_path / "rotten.lmdb"
    await _make_database(tmp_path, target)
    data = bytearray(target.read_bytes())
    where = data.find(b'"id":"victim"')
    assert where > 0
    data[where:where + 5] = b"\xff\xfe{{{"
    target.write_bytes(bytes(data))
    bridge, init, _ = await spawn(isolated_home, tmp_path, databasePath=str(target))
    try:
        answer = await bridge.request_raw("tool.executed", {"sessionID": "m", "callID": "new", "tool": "read",
                                                            "success": True, "agentId": "victim"})
        other = await bridge.request_raw("agent.status", {"agentId": "victim"})
        flushed = await bridge.request("flush")
        journal = Path(init["journal"]["path"]).read_bytes()
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    assert answer.get("error", {}).get("code") != -32603 and other.get("error", {}).get("code") != -32603, \
        f"internal errors: {answer}, {other}"
    assert flushed["errors"] or b'"new"' in journal, "the event was neither stored nor kept in the journal"


async def test_paths_with_spaces_and_unicode_work_end_to_end(tmp_path: Path) -> None:
    """HOME, database and project paths with spaces, accents, CJK and emoji: exact counts through a kill -9."""
    timer = Timer()
    home = tmp_path / "home with spaces é"
    project = tmp_path / "projets d'été" / "プロジェクト 🚀"
    db = tmp_path / "données partagées" / "データ ベース" / "agent tracker 📊.lmdb"
    project.mkdir(parents=True)
    home.mkdir()
    rng = random.Random(base_seed() + 11)
    for round_, database in enumerate([None, db]):
        steps = Workload(rng, f"u{round_}", str(project), ["ビルド", "plan ✓"], flush_rate=0.05).steps(150)
        config = {"databasePath": str(database)} if database else {}
        bridge, init, _ = await spawn(home, project, env=bridge_env(home, AGENT_TRACKER_CRASH_AT="event:120"), **config)
        try:
            assert init["database"]["available"] is True, init["database"]
            await send_steps(bridge, steps)
            assert await wait_exit(bridge) == -9
        finally:
            bridge.kill()
        bridge, init, _ = await spawn(home, project, **config)
        try:
            assert init["recovered"]["journals"] == 1
            assert await bridge.shutdown_and_exit() == 0
        finally:
            bridge.kill()
        path = database or home / ".config" / "opencode" / "agent-tracker.lmdb"
        data = read_db(path)
        assert invariant_violations(data) == []
        round_model = model_through(Model(), steps, 120)
        assert actual_view(data) == expected_view(round_model)
        assert {r["projectPath"] for r in data["commits"].values()} <= {str(project)}
    record("hostile-unicode-paths", rounds=2, events_received=240, events_lost=0, seconds=timer.seconds)


async def test_report_while_tracking_is_disabled_is_a_clear_answer(isolated_home: Path, tmp_path: Path) -> None:
    target = _a_directory(tmp_path)
    bridge, init, _ = await spawn(isolated_home, tmp_path, databasePath=str(target))
    try:
        report = await bridge.request_raw("report", {})
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    assert "result" in report or report["error"]["code"] != -32603, report
