"""Replay harness for protocol/recordings/*.jsonl, and the scenarios the recordings came from.

A recording is one message per line: ``{"dir": "in"|"out", "msg": {...}}``, plus for bad input
``{"dir": "in", "raw"|"rawBase64"|"frame": ...}`` and the markers ``{"dir": "restart"}`` and
``{"dir": "exit", "code": N}``. The harness spawns the real bridge (HOME in a temp dir), feeds
the ``in`` lines (waiting for the answer of each request, so the output order is
deterministic), and returns everything the bridge wrote, normalised.

``cd tests && python -m support.recordings --write`` regenerates the recordings from SCENARIOS below (review
the diff before committing: it is the contract's regression baseline). A real OpenCode
session recorded with AGENT_TRACKER_RECORD=<file> can be dropped into protocol/recordings/
after replacing its home directory with ``$HOME``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from .bridges import bridge_env, start_bridge

RECORDINGS = Path(__file__).resolve().parent.parent.parent / "protocol" / "recordings"
_BLOB = re.compile(r"\$BLOB\((\d+)\)")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")
_DATE = re.compile(r"\b\d{4}-\d\d-\d\d\b")  # a day alone: the report's "Last used" column
_JOURNAL_ID = re.compile(r"[0-9a-f]{12}(?=\.jsonl|:\d)")


def expand(text: str, home: Path) -> str:
    text = text.replace("$HOME", str(home))
    return _BLOB.sub(lambda match: "x" * int(match.group(1)), text)


def normalise(message: Any, home: Path) -> Any:
    text = json.dumps(message, sort_keys=True, ensure_ascii=False).replace(str(home), "$HOME")
    text = _TIME.sub("<time>", text)
    text = _DATE.sub("<date>", text)
    text = _JOURNAL_ID.sub("<journal>", text)
    value = json.loads(text)
    return _scrub(value)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for name, item in value.items():
            if name == "durationMs" and isinstance(item, float):  # a timing; a sum of durations stays
                out[name] = "<ms>"
            elif name == "serverInfo" and isinstance(item, dict):
                out[name] = {**item, "version": "<version>"}
            else:
                out[name] = _scrub(item)
        return out
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


async def run_lines(lines: list[dict[str, Any]], home: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """Feed the ``in`` lines to a fresh bridge; return (lines with real outputs, exit codes)."""
    transcript: list[dict[str, Any]] = []
    exit_codes: list[int] = []
    bridge = await start_bridge(home, env=bridge_env(home))
    seen = 0

    def collect() -> None:
        nonlocal seen
        for message in bridge.received[seen:]:
            transcript.append({"dir": "out", "msg": message})
        seen = len(bridge.received)

    async def finish() -> None:
        if bridge.process.stdin and not bridge.process.stdin.is_closing():
            bridge.process.stdin.close()
        exit_codes.append(await bridge.wait())
        collect()

    try:
        for line in lines:
            direction = line["dir"]
            if direction == "out" or direction == "exit":
                continue
            if direction == "restart":
                await finish()
                transcript.append({"dir": "restart"})
                bridge = await start_bridge(home, env=bridge_env(home))
                seen = 0
                continue
            transcript.append(line)
            if "msg" in line:
                message = json.loads(expand(json.dumps(line["msg"]), home))
                if isinstance(message.get("id"), (str, int)) and "method" in message:
                    await bridge.send_request(message)  # wait: fixes the order of what follows
                else:
                    bridge.send(message)
            elif "raw" in line:
                bridge.write(frame(expand(line["raw"], home).encode()))
            elif "rawBase64" in line:
                bridge.write(frame(base64.b64decode(line["rawBase64"])))
            elif "frame" in line:
                bridge.write(line["frame"].encode("latin-1"))
            assert bridge.process.stdin is not None
            await bridge.process.stdin.drain()
            collect()
        await finish()
    finally:
        bridge.kill()
    transcript.append({"dir": "exit", "code": exit_codes[-1]})
    return transcript, exit_codes


def outputs(transcript: list[dict[str, Any]], home: Path) -> list[Any]:
    return [normalise(line["msg"], home) for line in transcript if line["dir"] == "out"]


def read_recording(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- scenarios --------------------------------------------------------------------------------

def _req(msg_id: int, method: str, params: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        message["params"] = params
    return {"dir": "in", "msg": message}


def _note(method: str, params: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return {"dir": "in", "msg": message}


PROJECT = "$HOME/projects/shop"
INIT = _req(1, "initialize", {"clientInfo": {"name": "opencode-plugin", "version": "0.1.0"},
                              "config": {}, "project": {"directory": PROJECT}})


def _bash(session: str, call: str, command: str, output: str, exit_ok: bool = True) -> dict[str, Any]:
    return _note("tool.executed", {"sessionID": session, "callID": call, "tool": "bash", "success": exit_ok,
                                   "args": {"command": command, "description": "run"}, "output": output})


def _tool(session: str, call: str, tool: str = "read", success: bool = True) -> dict[str, Any]:
    return _note("tool.executed", {"sessionID": session, "callID": call, "tool": tool, "success": success})


def full_session() -> list[dict[str, Any]]:
    return [
        INIT,
        _note("session.created", {"sessionID": "ses_1", "directory": PROJECT, "title": "Add cart"}),
        _note("session.updated", {"sessionID": "ses_1", "agent": {"id": "build", "model": "claude-sonnet-4",
                                                                   "provider": "anthropic"}}),
        _tool("ses_1", "call_1", "read"), _tool("ses_1", "call_2", "edit"), _tool("ses_1", "call_3", "grep"),
        _tool("ses_1", "call_4", "edit", success=False),
        _tool("ses_1", "call_2", "edit"),  # repeated callID: counted once
        _note("command.executed", {"sessionID": "ses_1", "command": "test", "success": True}),
        _bash("ses_1", "call_5", "git add -A && git commit -m 'feat: cart'",
              "[main (root-commit) 3f2a9c1] feat: cart\n 2 files changed, 40 insertions(+)\n"),
        _note("commit.completed", {"sessionID": "ses_1", "agentId": "build", "projectPath": PROJECT,
                                   "commitHash": "3f2a9c1d4e5f60718293a4b5c6d7e8f901234567",
                                   "taskDescription": "Add a shopping cart"}),
        _req(2, "grade", {"sessionID": "ses_1", "grade": 5, "grader": "agent", "reason": "tests pass"}),
        _note("grade", {"sessionID": "ses_1", "grade": "good", "grader": "user", "reason": "nice"}),
        _req(3, "agent.status", {"agentId": "build"}),
        _bash("ses_1", "call_6", "git push origin main",
              "To /srv/git/shop.git\n   0000000..3f2a9c1  main -> main\n"),
        _note("commit.pushed", {"sessionID": "ses_1", "projectPath": PROJECT}),  # same push: once
        _req(4, "agent.status", {"sessionID": "ses_1"}),
        _note("session.idle", {"sessionID": "ses_1"}),
        _note("session.deleted", {"sessionID": "ses_1"}),
        _req(5, "recommend", {"directory": "$HOME"}),  # one session: nothing to recommend yet
        _req(6, "shutdown"),
        _note("exit"),
    ]


def bad_input() -> list[dict[str, Any]]:
    return [
        _req(1, "agent.status", {"agentId": "build"}),  # before initialize: -32002
        _note("tool.executed", {"sessionID": "s", "callID": "c", "tool": "read", "success": True}),
        INIT,
        {"dir": "in", "raw": "{not json"},
        {"dir": "in", "rawBase64": base64.b64encode(b'{"jsonrpc": "2.0", "method": "\xff\xfe"}').decode()},
        {"dir": "in", "raw": "[1, 2]"},
        {"dir": "in", "raw": "42"},
        {"dir": "in", "msg": {"jsonrpc": "1.0", "id": 10, "method": "flush"}},
        {"dir": "in", "msg": {"id": 11, "method": "flush"}},
        {"dir": "in", "msg": {"jsonrpc": "2.0", "id": [12], "method": "flush"}},
        _req(13, "no.such.method", {}),
        _note("no.such.notification", {}), _note("no.such.notification", {}),
        _req(14, "grade", {"sessionID": "s", "grade": 3, "grader": "user"}),
        _req(15, "grade", {"sessionID": "s", "grade": "2", "grader": "user"}),
        _req(16, "grade", {"sessionID": "s", "grade": True, "grader": "user"}),
        _req(17, "grade", {"sessionID": "s", "grade": None, "grader": "user"}),
        _req(18, "grade", {"sessionID": "s", "grade": 2.5, "grader": "robot"}),
        _req(19, "grade", {"sessionID": "s", "grade": 2, "grader": "user"}),  # no commit to grade
        _req(20, "tool.executed", {"sessionID": 7, "callID": "", "tool": None, "success": "yes"}),
        _note("tool.executed", {"sessionID": "s", "callID": "c1", "tool": "read", "success": "true"}),
        _req(21, "session.created", ["not", "an", "object"]),
        _req(22, "agent.status", {}),
        _note("session.created", {"sessionID": "s", "agent": {"id": "build"}}),
        _note("tool.executed", {"sessionID": "s", "callID": "c2", "tool": "read", "success": True}),
        _req(23, "agent.status", {"agentId": "build"}),
        _req(24, "session.idle", {"sessionID": "s", "at": "an hour ago"}),  # the event time: -32602
        _req(25, "recommend", {"directory": "$HOME/no/such/folder"}),
        _req(26, "recommend", {"directory": "$HOME", "minSessions": 0}),
        {"dir": "in", "frame": "Content-Length: 99999999999\r\n\r\n"},
    ]


def two_interleaved_sessions() -> list[dict[str, Any]]:
    other = "$HOME/projects/web"
    return [
        INIT,
        _note("session.created", {"sessionID": "ses_a", "directory": PROJECT,
                                  "agent": {"id": "build", "model": "gpt-5", "provider": "openai"}}),
        _note("session.created", {"sessionID": "ses_b", "directory": other,
                                  "agent": {"id": "plan", "model": "claude-sonnet-4", "provider": "anthropic"}}),
        _tool("ses_a", "a1"), _tool("ses_b", "b1"), _tool("ses_a", "a2"), _tool("ses_b", "b2"),
        _tool("ses_b", "a1"),  # same callID in another session counts
        _bash("ses_a", "a3", "git commit -am 'fix: totals'", "[main 1111111] fix: totals\n"),
        _bash("ses_b", "b3", "git commit -am 'feat: page'", "[main 2222222] feat: page\n"),
        _req(2, "grade", {"sessionID": "ses_b", "grade": -1, "grader": "user", "reason": "broke the build"}),
        _req(3, "grade", {"sessionID": "ses_a", "grade": "excellence", "grader": "user"}),
        _note("bug.reported", {"sessionID": "ses_b", "description": "page crashes"}),
        _req(4, "agent.status", {"agentId": "plan"}),
        _tool("ses_b", "b4"),  # halted: earns nothing
        _req(5, "agent.status", {"agentId": "plan"}),
        _req(6, "agent.reinstate", {"agentId": "plan", "reason": "fixed by hand"}),
        _note("session.deleted", {"sessionID": "ses_a"}),
        _note("session.deleted", {"sessionID": "ses_b"}),
        _req(7, "agent.status", {"agentId": "build"}),
        _req(8, "shutdown"), _note("exit"),
    ]


def restart_persistence() -> list[dict[str, Any]]:
    return [
        INIT,
        _note("session.created", {"sessionID": "ses_r", "directory": PROJECT, "agent": {"id": "build"}}),
        _tool("ses_r", "r1"), _tool("ses_r", "r2"),
        _bash("ses_r", "r3", "git commit -m wip", "[main abcdef0] wip\n"),
        _req(2, "agent.status", {"agentId": "build"}),
        {"dir": "restart"},  # stdin closed: the bridge flushes and exits 0
        INIT,
        _req(2, "agent.status", {"agentId": "build"}),
        _tool("ses_r", "r4"),
        _req(3, "grade", {"sessionID": "ses_r", "grade": 1, "grader": "user"}),
        _req(4, "agent.status", {"sessionID": "ses_r"}),
        _req(5, "shutdown"), _note("exit"),
    ]


def map_full() -> list[dict[str, Any]]:
    small = _req(1, "initialize", {"clientInfo": {"name": "opencode-plugin", "version": "0.1.0"},
                                   "config": {"maxDatabaseSize": "1MiB"}, "project": {"directory": PROJECT}})
    large = _req(1, "initialize", {"clientInfo": {"name": "opencode-plugin", "version": "0.1.0"},
                                   "config": {"maxDatabaseSize": "64MiB"}, "project": {"directory": PROJECT}})
    lines = [small, _note("session.created", {"sessionID": "ses_f", "directory": PROJECT, "agent": {"id": "build"}})]
    lines += [_note("retrospective.recorded", {"sessionID": "ses_f", "summary": f"$BLOB(60000) {i}"})
              for i in range(24)]
    lines += [_tool("ses_f", "f1"), _req(2, "flush"), _req(3, "flush"), _req(4, "agent.status", {"agentId": "build"}),
              _req(5, "shutdown"), _note("exit"), {"dir": "restart"}, large,
              _req(2, "agent.status", {"agentId": "build"}), _req(3, "shutdown"), _note("exit")]
    return lines


def invalid_config() -> list[dict[str, Any]]:
    def init(msg_id: int, config: Any) -> dict[str, Any]:
        return _req(msg_id, "initialize", {"config": config, "project": {"directory": PROJECT}})
    return [
        init(1, {"maxDatabaseSize": 512}), init(2, {"maxDatabaseSize": "3GiB"}),
        init(3, {"maxDatabaseSize": "big"}), init(4, {"databasePath": 5}),
        init(5, {"maxDatabaseSize": 1048576, "databsePath": "typo"}),
        init(6, {"scoring": {"toolCallXp": -1}}), init(7, "not an object"),
        init(8, {"databasePath": "trackers/team.lmdb", "maxDatabaseSize": "2GiB"}),
        _req(9, "shutdown"), _note("exit"),
    ]


def usage_recorded() -> list[dict[str, Any]]:
    """Issue 14: what model calls cost, per message, idempotent per messageID; a subagent's usage
    counts for its root session's setup; the report's cost figures."""
    claude = {"id": "build", "model": "claude-sonnet-4-5", "provider": "anthropic"}
    first = {"sessionID": "ses_u", "messageID": "msg_1", "cost": 0.00396, "durationMs": 4722, "agent": claude,
             "tokens": {"input": 800, "output": 80, "reasoning": 20, "cacheRead": 200, "cacheWrite": 0}}
    return [
        INIT,
        _note("session.created", {"sessionID": "ses_u", "directory": PROJECT, "agent": claude}),
        _note("usage.recorded", first),
        _note("usage.recorded", first),  # OpenCode repeats a message: replaced, never added
        _req(2, "usage.recorded", {"sessionID": "ses_u", "messageID": "msg_2", "cost": 0.0018,
                                   "tokens": {"input": 300, "output": 40, "cacheRead": 1000}, "durationMs": 2100}),
        _bash("ses_u", "call_1", "git commit -am 'feat: usage'", "[main 4b5c6d7] feat: usage\n"),
        _note("session.created", {"sessionID": "ses_sub", "directory": PROJECT, "parentID": "ses_u",
                                  "agent": {"id": "general", "model": "claude-haiku-4-5", "provider": "anthropic"}}),
        _note("usage.recorded", {"sessionID": "ses_sub", "messageID": "msg_3", "cost": 0.0009,
                                 "tokens": {"input": 200, "output": 15}, "durationMs": 900}),
        _req(3, "usage.recorded", {"sessionID": "ses_u", "messageID": "msg_4", "cost": -1,
                                   "tokens": {"input": 1.5}}),
        _note("usage.recorded", {"sessionID": "ses_u", "messageID": "msg_5"}),  # dropped with a log line
        _req(4, "report", {"minSessions": 1}),
        _req(5, "shutdown"), _note("exit"),
    ]


def agent_configured() -> list[dict[str, Any]]:
    """Issue 24: an agent's whole definition, recorded once per change; the session, its commit and
    its grade carry the version; a definition that is not an object is refused; the report tells the
    two versions of build apart."""
    build = {"id": "build", "model": "claude-sonnet-4-5", "provider": "anthropic"}
    first = {"name": "build", "mode": "primary", "prompt": "You are the build agent.\nWrite tests first.\n",
             "temperature": 0.2, "tools": ["bash", "edit", "read"],
             "sent": {"temperature": 0.2, "topP": 1, "options": {}},
             "instructions": [{"path": "AGENTS.md", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}],
             "mcp": []}
    second = {**first, "prompt": "You are the build agent.\nWrite the code first.\n", "temperature": 0.7,
              "sent": {"temperature": 0.7, "topP": 1, "options": {}}}
    return [
        INIT,
        _note("session.created", {"sessionID": "ses_a", "directory": PROJECT, "agent": build}),
        _req(2, "agent.configured", {"sessionID": "ses_a", "agentId": "build", "definition": first}),
        _bash("ses_a", "a1", "git commit -am 'feat: first'", "[main 1a2b3c4] feat: first\n"),
        _note("grade", {"sessionID": "ses_a", "grade": 2, "grader": "user"}),
        _note("session.deleted", {"sessionID": "ses_a"}),
        _note("session.created", {"sessionID": "ses_b", "directory": PROJECT, "agent": build}),
        _req(3, "agent.configured", {"sessionID": "ses_b", "agentId": "build", "definition": second}),
        _req(4, "agent.configured", {"sessionID": "ses_b", "agentId": "build", "definition": "be nice"}),
        _bash("ses_b", "b1", "git commit -am 'feat: second'", "[main 5d6e7f8] feat: second\n"),
        _note("grade", {"sessionID": "ses_b", "grade": 5, "grader": "user"}),
        _note("session.deleted", {"sessionID": "ses_b"}),
        _req(5, "report", {"minSessions": 1}),
        _req(6, "shutdown"), _note("exit"),
    ]


def outcome_signals() -> list[dict[str, Any]]:
    """Issue 15's signals nobody types: failed tool calls, an amend and a fixup! commit soon after,
    a revert (a bug of the agent whose commit it reverts, which halts it), an abandoned session,
    retrospectives, and the report that counts them; the open session ends at shutdown."""
    build = {"id": "build", "model": "claude-sonnet-4", "provider": "anthropic"}
    plan = {"id": "plan", "model": "gpt-5", "provider": "openai"}
    return [
        INIT,
        _note("session.created", {"sessionID": "ses_w", "directory": PROJECT, "agent": build}),
        _tool("ses_w", "w1", "read"), _tool("ses_w", "w2", "edit", success=False),
        _bash("ses_w", "w3", "npm test", "1 failing", exit_ok=False),
        _bash("ses_w", "w4", "git commit -am 'feat: cart'", "[main 1a1a1a1] feat: cart\n"),
        _bash("ses_w", "w5", "git commit -a --amend --no-edit", "[main 2b2b2b2] feat: cart\n"),
        _bash("ses_w", "w6", "git commit -am 'feat: totals'", "[main 3c3c3c3] feat: totals\n"),
        _bash("ses_w", "w7", "git commit --fixup=3c3c3c3", "[main 4d4d4d4] fixup! feat: totals\n"),
        _req(2, "retrospective.recorded", {"sessionID": "ses_w", "author": "agent", "summary": "cart done",
                                           "toImprove": ["run the tests before committing"]}),
        _req(3, "retrospective.recorded", {"sessionID": "ses_w", "author": "user", "summary": "two fix-ups"}),
        _note("session.created", {"sessionID": "ses_r", "directory": PROJECT, "agent": plan}),
        _bash("ses_r", "r1", "git revert --no-edit 3c3c3c3", "[main 5e5e5e5] Revert \"feat: totals\"\n"),
        _req(4, "agent.status", {"agentId": "build"}),
        _note("session.created", {"sessionID": "ses_x", "directory": PROJECT, "agent": plan}),
        _tool("ses_x", "x1", "read"),
        _note("session.deleted", {"sessionID": "ses_x"}),
        _req(5, "report", {}),
        _req(6, "shutdown"), _note("exit"),
    ]


def subagent_session() -> list[dict[str, Any]]:
    """A `task`-tool subagent: its session (parentID) counts for its root session's setup; a /grade
    in the root session grades the subagent's commit; the report shows the workflow."""
    return [
        INIT,
        _note("session.created", {"sessionID": "ses_root", "directory": PROJECT, "title": "Fix the cart",
                                  "agent": {"id": "build", "model": "claude-sonnet-4", "provider": "anthropic"}}),
        _tool("ses_root", "t1", "read"),
        _note("session.created", {"sessionID": "ses_sub", "directory": PROJECT, "parentID": "ses_root",
                                  "title": "Inspect the log (@general subagent)"}),
        _note("session.updated", {"sessionID": "ses_sub",
                                  "agent": {"id": "general", "model": "claude-haiku-4", "provider": "anthropic"}}),
        _bash("ses_sub", "s1", "git log --oneline -n 1", "1a1a1a1 feat: cart\n"),
        _tool("ses_sub", "s2", "grep", success=False),
        _bash("ses_sub", "s3", "git commit -am 'fix: cart total'", "[main 6f6f6f6] fix: cart total\n"),
        _note("session.idle", {"sessionID": "ses_sub"}),
        _req(2, "grade", {"sessionID": "ses_root", "grade": 5, "grader": "user", "reason": "found it"}),
        _req(3, "report", {}),
        _req(4, "shutdown"), _note("exit"),
    ]


SCENARIOS = {
    "full_session": full_session, "bad_input": bad_input,
    "two_interleaved_sessions": two_interleaved_sessions, "restart_persistence": restart_persistence,
    "map_full": map_full, "invalid_config": invalid_config,
    "outcome_signals": outcome_signals, "subagent_session": subagent_session, "usage_recorded": usage_recorded,
    "agent_configured": agent_configured,
}


async def _write_all() -> None:
    RECORDINGS.mkdir(parents=True, exist_ok=True)
    for name, scenario in SCENARIOS.items():
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            transcript, _ = await run_lines(scenario(), home)
            lines = [line if line["dir"] != "out" else {"dir": "out", "msg": normalise(line["msg"], home)}
                     for line in transcript]
        path = RECORDINGS / f"{name}.jsonl"
        path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
        print(f"wrote {path} ({len(lines)} lines)")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage (in tests/): python -m support.recordings --write")
    asyncio.run(_write_all())
