"""Recorded sessions replayed against the real bridge: the outputs must match the recording."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from support.bridges import start_bridge
from support.recordings import (
    RECORDINGS,
    SCENARIOS,
    normalise,
    outputs,
    read_recording,
    run_lines,
)

SCHEMA = json.loads((RECORDINGS.parent / "schema.json").read_text())
REQUIRED = {"full_session", "bad_input", "two_interleaved_sessions", "restart_persistence", "map_full",
            "invalid_config", "outcome_signals", "subagent_session", "usage_recorded"}


def test_every_required_recording_exists() -> None:
    assert REQUIRED <= {path.stem for path in RECORDINGS.glob("*.jsonl")}


@pytest.mark.parametrize("path", sorted(RECORDINGS.glob("*.jsonl")), ids=lambda p: p.stem)
async def test_replay_matches_recording(path: Path, tmp_path: Path) -> None:
    recording = read_recording(path)
    transcript, _codes = await run_lines(recording, tmp_path)
    expected = [line["msg"] for line in recording if line["dir"] == "out"]
    assert outputs(transcript, tmp_path) == expected
    expected_exit = [line["code"] for line in recording if line["dir"] == "exit"]
    assert [line["code"] for line in transcript if line["dir"] == "exit"] == expected_exit


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_recording_inputs_are_the_scenario(name: str) -> None:
    """The committed recordings were generated from the scenarios (regenerate with --write)."""
    recorded = [line for line in read_recording(RECORDINGS / f"{name}.jsonl") if line["dir"] in ("in", "restart")]
    assert recorded == SCENARIOS[name]()


async def test_results_and_notifications_follow_the_schema(tmp_path: Path) -> None:
    transcript, _ = await run_lines(read_recording(RECORDINGS / "two_interleaved_sessions.jsonl"), tmp_path)
    requests = {line["msg"]["id"]: line["msg"]["method"] for line in transcript
                if line["dir"] == "in" and "id" in line.get("msg", {})}
    checked = 0
    for line in transcript:
        if line["dir"] != "out":
            continue
        message = line["msg"]
        if "method" in message:
            spec = SCHEMA["notificationsFromBridge"][message["method"]]["params"]
            jsonschema.validate(message["params"], {**spec, "$defs": SCHEMA["$defs"]})
            checked += 1
        elif "result" in message and "result" in SCHEMA["methods"][requests[message["id"]]]:
            spec = SCHEMA["methods"][requests[message["id"]]]["result"]
            jsonschema.validate(message["result"], {**spec, "$defs": SCHEMA["$defs"]})
            checked += 1
    assert checked >= 8


async def test_recorder_writes_a_replayable_file(tmp_path: Path) -> None:
    """AGENT_TRACKER_RECORD turns a live session into a recording that replays identically."""
    from support.bridges import bridge_env

    record = tmp_path / "recorded.jsonl"
    home = tmp_path / "home"
    home.mkdir()
    bridge = await start_bridge(home, env=bridge_env(home, AGENT_TRACKER_RECORD=str(record)))
    try:
        await bridge.initialize(home / "p")
        bridge.notify("session.created", {"sessionID": "s", "agent": {"id": "build"}})
        bridge.notify("tool.executed", {"sessionID": "s", "callID": "1", "tool": "read", "success": True})
        bridge.write(b"Content-Length: 3\r\n\r\n{x}")
        await bridge.request("agent.status", {"agentId": "build"})
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    lines = read_recording(record)
    assert [line["dir"] for line in lines].count("in") == 7
    assert {"dir": "in", "raw": "{x}"} in lines
    recorded_out = [normalise(line["msg"], home) for line in lines if line["dir"] == "out"]
    replay_home = tmp_path / "replay"
    replay_home.mkdir()
    as_recording = json.loads(json.dumps(lines).replace(str(home), "$HOME"))
    transcript, _ = await run_lines(as_recording, replay_home)
    assert outputs(transcript, replay_home) == recorded_out
