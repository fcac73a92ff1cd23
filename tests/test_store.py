"""Issue 2: the central LMDB store on real environments in temp dirs, and what initialize reports."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import lmdb
import pytest
from support.bridges import ROOT, RpcError, start_bridge
from support.tracking import open_store, spawn_bridge

from bridge.config import BridgeConfig, MiB
from bridge.store import (
    SCHEMA_VERSION,
    SUB_DATABASES,
    DatabaseFull,
    Store,
    StoreUnavailable,
    full_message,
)

FIXTURES = Path(__file__).parent / "fixtures" / "lmdbjs"


def _config(path: Path | str, size: int = 64 * MiB) -> BridgeConfig:
    return BridgeConfig(database_path=str(path), max_database_size=size)


# -- opening ---------------------------------------------------------------------------------


def test_missing_parent_folders_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "tracker.lmdb"
    with Store.open(_config(path)) as store:
        assert store.info().to_wire() == {"path": str(path), "mapSize": 64 * MiB, "available": True,
                                          "readOnly": False}
        with store.read() as view:
            assert view.get("meta", "schemaVersion") == SCHEMA_VERSION == 1
    assert path.is_file()
    assert sorted(os.listdir(path.parent)) == ["tracker.lmdb", "tracker.lmdb-lock"]


def test_reopening_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "t.lmdb"
    with open_store(path) as store:
        store.write(lambda view: view.put("agents", "build", {"id": "build", "n": 1}))
    with open_store(path) as store:
        with store.read() as view:
            assert view.get("agents", "build") == {"id": "build", "n": 1}
            assert [view.count(db) for db in SUB_DATABASES] == [1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]


def test_a_directory_at_the_path_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "is-a-dir"
    path.mkdir()
    store = Store.open(_config(path))
    assert (store.available, store.read_only) == (False, True)
    assert store.error == (f"The database path {path} is a directory; agent-tracker needs a file path there "
                           f"(set databasePath to a file such as {path / 'agent-tracker.lmdb'}).")
    assert os.listdir(path) == []
    with pytest.raises(StoreUnavailable):
        store.write(lambda view: None)
    with pytest.raises(StoreUnavailable):
        with store.read():
            pass
    store.close()


def test_a_regular_file_where_a_parent_folder_must_be(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("I am a file")
    deep = blocker / "sub" / "tracker.lmdb"  # mkdir through a file: ENOTDIR
    store = Store.open(_config(deep))
    assert (store.available, store.read_only) == (False, True)
    assert store.error == f"Cannot create the folder {blocker / 'sub'} for the database: {blocker} is a file, not a folder."
    store.close()
    direct = blocker / "tracker.lmdb"  # the parent itself is the file
    store = Store.open(_config(direct))
    assert (store.available, store.read_only) == (False, True)
    assert store.error is not None and str(blocker) in store.error
    store.close()
    assert blocker.read_text() == "I am a file"


def _open_as_unprivileged_user(path: Path) -> dict:
    """Store.open in a forked child that dropped root (root ignores directory permissions)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 0
        try:
            os.close(read_fd)
            if os.getuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            store = Store.open(_config(path))
            os.write(write_fd, json.dumps({"available": store.available, "readOnly": store.read_only,
                                           "error": store.error, "uid": os.getuid()}).encode())
            store.close()
        except BaseException as exc:  # report, never raise in the child
            os.write(write_fd, json.dumps({"exception": repr(exc)}).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def test_read_only_parent_folder_is_unavailable_with_a_clear_error() -> None:
    base = Path(tempfile.mkdtemp(prefix="agent-tracker-perm-"))
    try:
        os.chmod(base, 0o755)
        locked = base / "locked"
        locked.mkdir()
        os.chmod(locked, 0o555)
        result = _open_as_unprivileged_user(locked / "tracker.lmdb")
        assert result["uid"] != 0
        assert (result["available"], result["readOnly"]) == (False, True)
        assert result["error"].startswith(f"No permission to open the database at {locked / 'tracker.lmdb'}")
        assert "Permission denied" in result["error"]
        result = _open_as_unprivileged_user(locked / "sub" / "tracker.lmdb")
        assert (result["available"], result["readOnly"]) == (False, True)
        assert result["error"] == f"Cannot create the folder {locked / 'sub'} for the database: Permission denied."
        assert os.listdir(locked) == []
    finally:
        os.chmod(base / "locked", 0o755)
        shutil.rmtree(base)


def test_random_bytes_file_is_unavailable_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.lmdb"
    garbage = random.Random(20261126).randbytes(64 * 1024)
    path.write_bytes(garbage)
    store = Store.open(_config(path))
    assert (store.available, store.read_only, store.foreign) == (False, True, False)
    assert store.error == (f"The file at {path} is not a readable agent-tracker database (corrupt or another "
                           f"program's file: {path}: MDB_INVALID: File is not an LMDB file). Tracking is "
                           f"disabled; move the file away or choose another databasePath.")
    assert store.info().to_wire() == {"path": str(path), "mapSize": 64 * MiB, "available": False,
                                      "readOnly": True, "error": store.error}
    store.close()
    assert path.read_bytes() == garbage


_TRUNCATED_PROBE = """
import json, sys
from bridge.config import BridgeConfig
from bridge.store import Store
store = Store.open(BridgeConfig(database_path=sys.argv[1]))
print(json.dumps({"available": store.available, "error": store.error}))
"""


def test_truncated_database_file_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "truncated.lmdb"
    with open_store(path) as store:
        store.write(lambda view: [view.put("activities", f"k{i:05d}", {"x": "y" * 200}) for i in range(2000)])
    assert path.stat().st_size > 64 * 1024
    os.truncate(path, 4 * 4096)  # e.g. an interrupted copy or backup restore
    # In a child process: today the mmap read past the end of the file raises SIGBUS.
    probe = subprocess.run([sys.executable, "-c", _TRUNCATED_PROBE, str(path)], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, f"Store.open died with signal {-probe.returncode}: {probe.stderr[-500:]}"
    result = json.loads(probe.stdout)
    assert result["available"] is False
    assert str(path) in result["error"]


def test_another_programs_lmdb_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "other.lmdb"
    env = lmdb.open(str(path), subdir=False, max_dbs=4)
    env.open_db(b"invoices")
    with env.begin(write=True) as txn:
        txn.put(b"config", b"x")
    env.close()
    before = path.read_bytes()
    store = Store.open(_config(path))
    assert (store.available, store.read_only) == (False, True)
    assert store.error == (f"The LMDB database at {path} belongs to another program (it holds config, invoices); "
                           f"agent-tracker will not write into it. Choose another databasePath.")
    store.close()
    assert path.read_bytes() == before


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.lmdb"
    with open_store(path) as store:
        store.write(lambda view: view.put("meta", "schemaVersion", SCHEMA_VERSION + 1))
    store = Store.open(_config(path))
    assert store.available is False
    assert store.error == (f"The database at {path} has schema version 2, newer than this agent-tracker "
                           f"understands (1); upgrade agent-tracker.")
    store.close()


_LMDBJS_FIXTURES = sorted(FIXTURES.glob("*.mdb")) if FIXTURES.is_dir() else []


@pytest.mark.parametrize("fixture", _LMDBJS_FIXTURES or [None], ids=lambda p: p.name if p else "none")
def test_an_lmdbjs_database_is_recognised_and_left_untouched(tmp_path: Path, fixture: Path | None) -> None:
    if fixture is None:
        pytest.skip("no lmdb-js fixture yet: run `node generate.mjs` in tests/fixtures/lmdbjs")
    path = tmp_path / "agent-tracker.lmdb"
    shutil.copyfile(fixture, path)
    before = path.read_bytes()
    store = Store.open(_config(path))
    assert (store.available, store.read_only, store.foreign) == (False, True, True)
    assert store.error == (f"The database at {path} was written by the older TypeScript plugin (lmdb-js, data "
                           f"format v2), which this bridge cannot write into. Run `agent-tracker migrate` to "
                           f"move it aside and import its history; nothing will be deleted.")
    store.close()
    assert path.read_bytes() == before


# -- writing -----------------------------------------------------------------------------------


def test_an_exception_inside_write_aborts_the_whole_transaction(tmp_path: Path) -> None:
    with open_store(tmp_path / "t.lmdb") as store:
        txn = store.last_txn_id()

        def half_then_fail(view):
            view.put("agents", "a", {"id": "a"})
            view.put("agents", "b", {"id": "b"})
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            store.write(half_then_fail)
        assert store.last_txn_id() == txn
        with store.read() as view:
            assert view.count("agents") == 0
        assert store.write(lambda view: view.insert("agents", "a", {"id": "a"})) is True
        assert store.write(lambda view: view.insert("agents", "a", {"id": "other"})) is False
        # A put-if-absent that finds the key changes nothing: LMDB commits no new transaction.
        assert store.last_txn_id() == txn + 1
        with store.read() as view:
            assert view.get("agents", "a") == {"id": "a"}


def test_floats_round_trip_exactly(tmp_path: Path) -> None:
    record = {"xp": 23.7, "sum": 0.1 + 0.2, "tiny": 5e-324, "huge": 1.7976931348623157e308, "neg": -1.5}
    assert record["sum"] == 0.30000000000000004
    path = tmp_path / "floats.lmdb"
    with open_store(path) as store:
        store.write(lambda view: view.put("agents", "f", record))
    with open_store(path) as store:
        with store.read() as view:
            back = view.get("agents", "f")
            raw = list(view.raw_values("agents"))
    assert back == record
    assert [repr(v) for v in back.values()] == ["23.7", "0.30000000000000004", "5e-324",
                                                "1.7976931348623157e+308", "-1.5"]
    assert raw == [b'{"xp":23.7,"sum":0.30000000000000004,"tiny":5e-324,"huge":1.7976931348623157e+308,"neg":-1.5}']


def test_map_full_aborts_the_batch_atomically_and_turns_read_only(tmp_path: Path) -> None:
    path = tmp_path / "small.lmdb"
    store = open_store(path, max_size=MiB)
    assert store.map_size == MiB
    blob = "x" * 3000
    committed = 0
    failing_batch = None
    for batch in range(1000):
        count_before = store.write(lambda view: view.count("activities"))
        txn_before = store.last_txn_id()
        try:
            store.write(lambda view, b=batch: [view.put("activities", f"b{b:03d}\x00{i:02d}", {"blob": blob})
                                               for i in range(16)])
        except DatabaseFull as exc:
            failing_batch = batch
            error = str(exc)
            break
        committed += 1
    assert failing_batch is not None and committed >= 1
    assert error == full_message(MiB)
    assert "maxDatabaseSize = 1048576 bytes, 1 MiB" in error
    assert (store.available, store.read_only) == (True, True)
    assert store.error == error
    assert store.last_txn_id() == txn_before
    with store.read() as view:
        assert view.count("activities") == count_before == committed * 16
        assert list(view.scan("activities", f"b{failing_batch:03d}\x00")) == []
    # Writes are refused from now on (the map is a ceiling, never grown), reads keep working.
    with pytest.raises(DatabaseFull) as again:
        store.write(lambda view: view.put("meta", "small", 1))
    assert str(again.value) == error
    assert store.info().to_wire() == {"path": str(path), "mapSize": MiB, "available": True,
                                      "readOnly": True, "error": error}
    store.close()
    # A larger map on the same file: everything committed is there, and writing works again.
    with open_store(path, max_size=64 * MiB) as bigger:
        assert bigger.read_only is False
        with bigger.read() as view:
            assert view.count("activities") == committed * 16
        bigger.write(lambda view, b=failing_batch: [view.put("activities", f"b{b:03d}\x00{i:02d}", {"blob": blob})
                                                   for i in range(16)])
        with bigger.read() as view:
            assert view.count("activities") == (committed + 1) * 16


# -- what initialize reports ------------------------------------------------------------------------


async def test_initialize_reports_a_good_database(isolated_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "db" / "tracker.lmdb"
    bridge, result = await spawn_bridge(isolated_home, path, maxDatabaseSize="8MiB")
    try:
        assert result["database"] == {"path": str(path), "mapSize": 8 * MiB, "available": True,
                                      "readOnly": False}
        assert bridge.notifications_of("toast") == []
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    assert path.is_file()


async def test_initialize_reports_a_memory_database_and_removes_it(isolated_home: Path) -> None:
    bridge, result = await spawn_bridge(isolated_home, ":memory:")
    try:
        database = result["database"]
        folder = Path(database["path"]).parent
        assert folder.name.startswith("agent-tracker-memory-")
        assert database == {"path": str(folder / "agent-tracker.lmdb"), "mapSize": 512 * MiB,
                            "available": True, "readOnly": False}
        assert folder.is_dir()
        bridge.notify("tool.executed", {"sessionID": "s", "callID": "c", "tool": "read", "success": True,
                                        "agentId": "build"})
        assert (await bridge.request("flush"))["transactions"] == 1
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    assert not folder.exists()
    assert not (isolated_home / ".config").exists()


async def test_initialize_reports_an_unavailable_database(isolated_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "a-folder"
    path.mkdir()
    bridge, result = await spawn_bridge(isolated_home, path)
    try:
        error = (f"The database path {path} is a directory; agent-tracker needs a file path there "
                 f"(set databasePath to a file such as {path / 'agent-tracker.lmdb'}).")
        assert result["database"] == {"path": str(path), "mapSize": 512 * MiB, "available": False,
                                      "readOnly": True, "error": error}
        toast = await bridge.wait_for_notification("toast")
        assert toast == {"message": f"agent-tracker: tracking disabled. {error}", "variant": "error"}
        # Events are still accepted (counted in memory) and answered.
        bridge.notify("tool.executed", {"sessionID": "s", "callID": "c", "tool": "read", "success": True,
                                        "agentId": "build"})
        status = await bridge.request("agent.status", {"agentId": "build"})
        assert (status["experiencePoints"], status["pendingChanges"]) == (1.0, 1)
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    assert os.listdir(path) == []


@pytest.mark.parametrize(("size", "shown"), [(0, "0"), ("big", "'big'"), (3 * 1024 * MiB, "3221225472")])
async def test_initialize_rejects_an_invalid_size(isolated_home: Path, tmp_path: Path, size: object,
                                                  shown: str) -> None:
    path = tmp_path / "t.lmdb"
    bridge = await start_bridge(isolated_home)
    try:
        with pytest.raises(RpcError) as caught:
            await bridge.initialize(None, databasePath=str(path), maxDatabaseSize=size)
        assert caught.value.code == -32602
        assert "maxDatabaseSize" in caught.value.message
        assert f"got {shown}." in caught.value.message
        assert "between 1 MiB (1048576 bytes) and 2 GiB (2147483648 bytes)" in caught.value.message
        assert not path.exists()
        # The host can correct the option and initialize again.
        result = await bridge.initialize(None, databasePath=str(path), maxDatabaseSize="2MiB")
        assert result["database"] == {"path": str(path), "mapSize": 2 * MiB, "available": True,
                                      "readOnly": False}
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
