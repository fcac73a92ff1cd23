"""The event time (`at`): every event may say when it happened; the records take that time.

A replay of recorded sessions (the demo) sends it. Checked on a real TrackingService with its real
crash journal, and through the real bridge subprocess (the -32602 answer for a bad value).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from support.bridges import RpcError
from support.tracking import bash_commit, close_harness, make_harness, open_store, read_database, spawn_bridge, tool

from bridge.protocol.structure import InvalidParams, structure_params

AT = "2025-03-04T10:00:00.000Z"


def test_at_is_the_time_of_every_record_the_event_writes(tmp_path: Path, project: Path) -> None:
    h = make_harness(open_store(tmp_path / "t.lmdb"), directory=str(project))
    h.send("session.created", {"sessionID": "s", "directory": str(project), "at": AT,
                               "agent": {"id": "build", "provider": "openai", "model": "gpt-5"}},
           received_at="2026-11-26T05:00:00.000Z")  # `at` wins over the time the bridge received it
    h.send("tool.executed", {**bash_commit("s", "c1", "abc1234"), "at": "2025-03-04T10:05:00+02:00"})
    h.send("grade", {"sessionID": "s", "grade": 2, "grader": "user", "at": "2025-03-04T10:06:00.5Z"})
    h.send("bug.reported", {"sessionID": "s", "description": "x", "at": "2025-03-05T08:00:00Z"})
    h.send("tool.executed", tool("s", "c2"))  # no `at`: now
    h.service.flush()
    session = h.stored("sessions", "s")
    assert session is not None and session["createdAt"] == AT
    ((_, commit),) = h.all("commits")
    assert commit["createdAt"] == "2025-03-04T08:05:00.000Z"  # +02:00 stored as UTC
    ((_, grade),) = h.all("communication")
    assert grade["createdAt"] == "2025-03-04T10:06:00.500Z"
    (bug,) = [record for _, record in h.all("activities") if record["kind"] == "bug"]
    assert bug["createdAt"] == "2025-03-05T08:00:00.000Z"
    assert session["updatedAt"] > "2026"  # the last event had no `at`
    close_harness(h)


@pytest.mark.parametrize("value, says", [
    ("yesterday", "must be an ISO-8601 UTC timestamp"),
    ("2025-03-04", "must be an ISO-8601 UTC timestamp"),  # a date alone: no time of day
    ("2025-03-04T10:00:00", "has no time zone (add Z for UTC)"),
    ("2025-13-04T10:00:00Z", "must be an ISO-8601 UTC timestamp"),
    (1741082400, "must be an ISO-8601 UTC timestamp"),
    ("2999-01-01T00:00:00Z", "must not be in the future"),
])
def test_a_bad_at_is_refused_naming_the_field(value: object, says: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        structure_params("session.idle", {"sessionID": "s", "at": value})
    assert str(caught.value).startswith("session.idle: params.at ") and says in str(caught.value)


def test_non_events_have_no_at() -> None:
    # Queries are not events: an `at` there is an unknown field, ignored like any other.
    assert not hasattr(structure_params("agent.status", {"agentId": "a", "at": AT}), "at")


async def test_the_real_bridge_answers_minus_32602_and_keeps_the_time_through_a_crash(
        isolated_home: Path, tmp_path: Path, project: Path) -> None:
    database = tmp_path / "bridge.lmdb"
    bridge, _ = await spawn_bridge(isolated_home, database, directory=project)
    try:
        with pytest.raises(RpcError) as caught:
            await bridge.request("session.created", {"sessionID": "s", "at": "last week"})
        assert caught.value.code == -32602
        assert caught.value.message == ("session.created: params.at must be an ISO-8601 UTC timestamp like "
                                        "2026-11-26T05:00:00.000Z (a date, a time and a zone); got 'last week'")
        await bridge.request("session.created", {"sessionID": "s", "directory": str(project), "at": AT,
                                                 "agent": {"id": "build"}})
        await bridge.request("tool.executed", {**bash_commit("s", "c1", "abc1234"), "at": "2025-03-04T10:01:00Z"})
        bridge.process.send_signal(signal.SIGKILL)  # nothing flushed: only the journal has the events
        await bridge.wait()
    finally:
        bridge.kill()
    bridge, init = await spawn_bridge(isolated_home, database, directory=project)
    try:
        assert init["recovered"] == {"journals": 1, "events": 2}
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    stored = read_database(database)
    assert stored["sessions"]["s"]["createdAt"] == AT
    (commit,) = stored["commits"].values()
    assert commit["createdAt"] == "2025-03-04T10:01:00.000Z"
