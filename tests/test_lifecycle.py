"""How the bridge ends and when it flushes on its own: signals, EOF, exit codes, the periodic flush."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from support.bridges import BridgeProcess, start_bridge

from bridge.config import BridgeConfig
from bridge.store import Store


def stored_xp(database: Path, agent: str = "build") -> float | None:
    with Store.open(BridgeConfig(database_path=str(database)), readonly=True) as store:
        assert store.available, store.error
        with store.read() as view:
            record = view.get("agents", agent)
    return None if record is None else record["experiencePoints"]


async def start(home: Path, database: Path, **config: object) -> BridgeProcess:
    bridge = await start_bridge(home)
    await bridge.initialize(home / "project", databasePath=str(database), **config)
    bridge.notify("session.created", {"sessionID": "s", "agent": {"id": "build"}})
    for call in range(7):
        bridge.notify("tool.executed", {"sessionID": "s", "callID": f"c{call}", "tool": "read", "success": True})
    # Answered only after the notifications before it were handled.
    assert (await bridge.request("agent.status", {"agentId": "build"}))["pendingChanges"] == 7
    return bridge


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_flushes_and_exits_0(isolated_home: Path, tmp_path: Path, signum: int) -> None:
    database = tmp_path / "db.lmdb"
    bridge = await start(isolated_home, database)
    try:
        assert stored_xp(database) is None  # nothing written before the signal
        bridge.process.send_signal(signum)
        assert await bridge.wait() == 0
    finally:
        bridge.kill()
    assert stored_xp(database) == 7.0
    assert not list((tmp_path / "db.lmdb-journal").glob("*.jsonl"))  # flushed: journal removed


async def test_stdin_closed_flushes_and_exits_0(isolated_home: Path, tmp_path: Path) -> None:
    database = tmp_path / "db.lmdb"
    bridge = await start(isolated_home, database)
    try:
        await bridge.close_stdin()
        assert await bridge.wait() == 0
    finally:
        bridge.kill()
    assert stored_xp(database) == 7.0


async def test_exit_without_shutdown_is_code_1_but_still_flushes(isolated_home: Path, tmp_path: Path) -> None:
    database = tmp_path / "db.lmdb"
    bridge = await start(isolated_home, database)
    try:
        bridge.notify("exit")
        assert await bridge.wait() == 1
    finally:
        bridge.kill()
    assert stored_xp(database) == 7.0


async def test_an_oversized_frame_ends_the_stream_after_flushing(isolated_home: Path, tmp_path: Path) -> None:
    database = tmp_path / "db.lmdb"
    bridge = await start(isolated_home, database)
    try:
        bridge.write(b"Content-Length: 8388609\r\n\r\n")
        assert await bridge.wait() == 1
    finally:
        bridge.kill()
    assert stored_xp(database) == 7.0
    (log,) = [n for n in bridge.notifications_of("log") if n["level"] == "error"]
    assert log["message"].startswith("Rejected a frame of 8388609 bytes (limit 8388608)")


async def test_the_periodic_flush_writes_without_being_asked(isolated_home: Path, tmp_path: Path) -> None:
    database = tmp_path / "db.lmdb"
    bridge = await start(isolated_home, database, flushIntervalSeconds=0.2)
    try:
        for _ in range(100):  # bounded wait: at most 10 s
            if stored_xp(database) == 7.0:
                break
            await asyncio.sleep(0.1)
        assert stored_xp(database) == 7.0
        assert (await bridge.request("agent.status", {"agentId": "build"}))["pendingChanges"] == 0
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()


async def test_without_an_interval_nothing_is_written_until_a_flush_trigger(isolated_home: Path,
                                                                             tmp_path: Path) -> None:
    database = tmp_path / "db.lmdb"
    bridge = await start(isolated_home, database)
    try:
        await asyncio.sleep(0.5)
        assert stored_xp(database) is None
        bridge.notify("session.deleted", {"sessionID": "s"})  # a trigger: flushes
        # A flush request is answered once every flush before it committed; it finds nothing left
        # (0 transactions): the trigger wrote everything. (agent.status does not wait for flushes.)
        assert (await bridge.request("flush"))["transactions"] == 0
        assert stored_xp(database) == 7.0
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
