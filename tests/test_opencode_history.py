"""bridge.opencode.history on real opencode.db files.

The fixture is a database real OpenCode 1.18.33 wrote while tests/test_e2e_opencode.py played
tests/fixtures/opencode/scenario.json (see tests/fixtures/opencode/README.md). The committed
copy always runs; the copy the e2e test leaves in tests/fixtures/opencode/fresh/ (CI's own run)
runs as well when it is there and was made from the current scenario. Every test reads a copy
in its own temporary folder, so no -wal/-shm file ever appears in the checkout.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from bridge.opencode import excerpts, location, sessions
from bridge.opencode import history as oh
from bridge.opencode.history import OpenCodeHistory, OpenCodeSchemaError
from bridge.opencode.location import (
    OpenCodeHistoryError,
    locate_database,
    opencode_database_path,
)
from bridge.opencode.sessions import Tokens

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "opencode"
SCENARIO = FIXTURES / "scenario.json"
FRESH = FIXTURES / "fresh"


def _fresh_is_current() -> bool:
    try:
        meta = json.loads((FRESH / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    return (meta.get("scenarioSha256") == hashlib.sha256(SCENARIO.read_bytes()).hexdigest()
            and all((FRESH / name).is_file() for name in ("opencode.db", "opencode-api.json", "plugin-record.jsonl")))


class Source:
    """One produced fixture: the database, OpenCode's HTTP view of it, the plugin's recording."""

    def __init__(self, folder: Path, recording: Path) -> None:
        self.folder = folder
        self.meta: dict[str, Any] = json.loads((folder / "meta.json").read_text())
        self.api: dict[str, Any] = json.loads((folder / "opencode-api.json").read_text())
        self.recording = recording

    def copy_to(self, directory: Path) -> Path:
        target = directory / "opencode.db"
        shutil.copyfile(self.folder / "opencode.db", target)
        return target


@pytest.fixture(params=["committed", "fresh"])
def source(request: pytest.FixtureRequest) -> Source:
    if request.param == "fresh":
        if not _fresh_is_current():
            pytest.skip("no fresh opencode.db from the current scenario (tests/test_e2e_opencode.py makes one)")
        return Source(FRESH, FRESH / "plugin-record.jsonl")
    committed = Source(FIXTURES, ROOT / json.loads((FIXTURES / "meta.json").read_text())["pluginRecording"])
    assert committed.meta["scenarioSha256"] == hashlib.sha256(SCENARIO.read_bytes()).hexdigest(), (
        "scenario.json changed: regenerate the fixture (UPDATE_OPENCODE_FIXTURES=1 pytest tests/test_e2e_opencode.py)")
    return committed


@pytest.fixture
def db(source: Source, tmp_path: Path) -> Path:
    return source.copy_to(tmp_path)


@pytest.fixture(autouse=True)
def no_real_opencode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    for name in ("OPENCODE_DB", "OPENCODE_DISABLE_CHANNEL_DB"):
        monkeypatch.delenv(name, raising=False)


def read_all(path: Path, **kwargs: Any) -> list[sessions.HistorySession]:
    with OpenCodeHistory.open(path) as history:
        sessions = list(history.sessions(**kwargs))
        assert history.problems == [] and history.skipped_rows == 0
        return sessions


# ---------------------------------------------------------------------------------------------
# the real database, exactly

# (cost, tokens (input, output, reasoning, cache read, cache write), agent, finish) per assistant message
BUILD_MESSAGES = [
    (0.00396, (800, 80, 20, 200, 0), "build", "tool-calls"),
    (0.0018, (300, 40, 0, 1000, 0), "build", "tool-calls"),
    (0.00171, (300, 20, 10, 1200, 0), "build", "tool-calls"),
    (0.00222, (300, 60, 0, 1400, 0), "build", "tool-calls"),
    (0.001755, (300, 25, 0, 1600, 0), "build", "tool-calls"),
    (0.00132, (200, 12, 0, 1800, 0), "build", "stop"),
]
CHILD_MESSAGES = [
    (0.0018, (500, 20, 0, 0, 0), "general", "tool-calls"),
    (0.000945, (200, 15, 0, 400, 0), "general", "stop"),
]
PLAN_MESSAGES = [
    (0.00285, (800, 25, 5, 0, 0), "plan", "tool-calls"),
    (0.001485, (200, 45, 0, 700, 0), "plan", "stop"),
]
# (tool, status, success, exit code, title)
BUILD_TOOLS = [
    ("bash", "completed", True, 0,
     "echo 'feature line' >> feature.txt && git add feature.txt && git commit -m 'feat: add feature line'"),
    ("read", "error", False, None, None),
    ("bash", "completed", False, 1, "false"),
    ("task", "completed", True, None, "Inspect the log"),
    ("bash", "completed", True, 0, "git push origin main"),
]


def _message_rows(messages: tuple[sessions.AssistantMessage, ...]) -> list[tuple[Any, ...]]:
    return [(m.cost, (m.tokens.input, m.tokens.output, m.tokens.reasoning, m.tokens.cache_read,
                      m.tokens.cache_write), m.agent, m.finish) for m in messages]


def test_the_real_database_exactly(db: Path, source: Source) -> None:
    sessions = read_all(db)
    build, child, plan = sessions
    assert [s.id for s in sessions] == [source.meta["rootSessions"][0], *source.meta["childSessions"],
                                        source.meta["rootSessions"][1]]
    assert (build.parent_id, child.parent_id, plan.parent_id) == (None, build.id, None)
    assert (build.agent, child.agent, plan.agent) == ("build", "general", "plan")
    assert {(s.provider_id, s.model_id, s.version) for s in sessions} == {("scripted", "scripted", "1.18.33")}
    assert {s.directory for s in sessions} == {s.worktree for s in sessions} == {source.meta["project"]}
    assert child.title == "Inspect the log (@general subagent)"

    # the session rows' running totals: OpenCode's own sums of each session's step-finish parts
    assert build.cost == 0.012764999999999999
    assert build.tokens == Tokens(input=2200, output=237, reasoning=30, cache_read=7200, cache_write=0)
    assert child.cost == 0.002745
    assert child.tokens == Tokens(input=700, output=35, reasoning=0, cache_read=400, cache_write=0)
    assert plan.cost == 0.004335
    assert plan.tokens == Tokens(input=1000, output=70, reasoning=5, cache_read=700, cache_write=0)
    for session in sessions:  # the parent's totals do not include its child's
        assert session.message_tokens == session.tokens
        assert session.message_cost == pytest.approx(session.cost, rel=1e-12)

    assert _message_rows(build.messages) == BUILD_MESSAGES
    assert _message_rows(child.messages) == CHILD_MESSAGES
    assert _message_rows(plan.messages) == PLAN_MESSAGES
    for session in sessions:
        assert session.user_messages == 1
        for message in session.messages:
            # one model call per message: its single step-finish carries the same usage
            assert len(message.steps) == 1
            assert (message.steps[0].cost, message.steps[0].tokens) == (message.cost, message.tokens)
            assert (message.provider_id, message.model_id, message.error) == ("scripted", "scripted", None)
            assert message.time_completed is not None and message.duration_ms is not None
            assert message.duration_ms >= 0
    assert (build.part_count, child.part_count, plan.part_count) == (20, 7, 7)

    assert [(t.tool, t.status, t.success, t.exit_code, t.title) for t in build.tool_calls] == BUILD_TOOLS
    commit, missing, failing, task, push = build.tool_calls
    assert commit.output is not None and commit.output.startswith(f"[main {source.meta['commit']}] feat: add feature line")
    assert missing.output is not None and missing.output.startswith("File not found: ")
    assert missing.input == {"filePath": "does-not-exist.txt"}
    assert failing.output == "(no output)"
    assert task.input == {"description": "Inspect the log", "prompt": "Show the last commit. SCRIPT:sub",
                          "subagent_type": "general"}
    assert task.output is not None and f'<task id="{child.id}"' in task.output
    assert push.output is not None and f"..{source.meta['commit']}  main -> main" in push.output
    assert [(t.tool, t.success, t.title) for t in child.tool_calls] == [("bash", True, "git log --oneline -n 1")]
    assert [(t.tool, t.success, t.title) for t in plan.tool_calls] == [("read", True, "README.md")]
    for session in sessions:
        assert all(t.finished and t.session_id == session.id for t in session.tool_calls)
        starts = [t.time_start for t in session.tool_calls]
        assert starts == sorted(starts)  # type: ignore[type-var]


def test_the_database_matches_opencodes_own_api(db: Path, source: Source) -> None:
    """Every id, time and number against what OpenCode's HTTP API served for the same sessions."""
    sessions = {s.id: s for s in read_all(db)}
    assert set(sessions) == {s["info"]["id"] for s in source.api["sessions"]}
    for entry in source.api["sessions"]:
        info, session = entry["info"], sessions[entry["info"]["id"]]
        assert (session.project_id, session.parent_id, session.directory, session.title, session.slug) == (
            info["projectID"], info.get("parentID"), info["directory"], info["title"], info["slug"])
        assert (session.time_created, session.time_updated) == (info["time"]["created"], info["time"]["updated"])
        assert session.cost == info["cost"]
        assistants = [m for m in entry["messages"] if m["info"]["role"] == "assistant"]
        assert [m.id for m in session.messages] == [m["info"]["id"] for m in assistants]
        for message, served in zip(session.messages, assistants):
            i = served["info"]
            assert (message.parent_id, message.agent, message.provider_id, message.model_id, message.cost,
                    message.time_created, message.time_completed, message.finish) == (
                i["parentID"], i["agent"], i["providerID"], i["modelID"], i["cost"], i["time"]["created"],
                i["time"]["completed"], i["finish"])
            assert message.tokens.total == i["tokens"]["total"]
            steps = [p for p in served["parts"] if p["type"] == "step-finish"]
            assert [s.part_id for s in message.steps] == [p["id"] for p in steps]
        tools = [p for m in entry["messages"] for p in m["parts"] if p["type"] == "tool"]
        assert sorted((t.id, t.call_id, t.tool, t.status, t.time_start, t.time_end) for t in session.tool_calls) == sorted(
            (p["id"], p["callID"], p["tool"], p["state"]["status"], p["state"]["time"]["start"], p["state"]["time"]["end"])
            for p in tools)
        assert session.user_messages == sum(1 for m in entry["messages"] if m["info"]["role"] == "user")


def test_usage_equals_the_latest_live_event_per_message(db: Path, source: Source) -> None:
    """The plugin sees each assistant message three times in message.updated (zeros, usage,
    completed); the latest per message id is what the database holds. Summing them would count
    the usage twice."""
    latest: dict[str, dict[str, Any]] = {}
    repeats: dict[str, int] = {}
    step_finishes: dict[str, dict[str, Any]] = {}
    for line in source.recording.read_text().splitlines():
        hook = json.loads(line)
        if hook["hook"] != "event":
            continue
        event = hook["input"]
        if event["type"] == "message.updated" and event["properties"]["info"]["role"] == "assistant":
            info = event["properties"]["info"]
            latest[info["id"]] = info
            repeats[info["id"]] = repeats.get(info["id"], 0) + 1
        elif event["type"] == "message.part.updated" and event["properties"]["part"]["type"] == "step-finish":
            part = event["properties"]["part"]
            assert part["id"] not in step_finishes, "a step-finish part is sent once"
            step_finishes[part["id"]] = part
    messages = {m.id: m for s in read_all(db) for m in s.messages}
    assert set(latest) == set(messages)
    assert set(repeats.values()) == {3}
    for message_id, info in latest.items():
        message = messages[message_id]
        assert (message.cost, message.tokens, message.time_completed, message.agent) == (
            info["cost"], Tokens.from_json(info["tokens"]), info["time"]["completed"], info["agent"])
        assert [step_finishes[s.part_id]["cost"] for s in message.steps] == [message.cost]
        assert step_finishes[message.steps[0].part_id]["messageID"] == message_id


def test_timeline_is_the_live_order(db: Path) -> None:
    build = read_all(db)[0]
    kinds = [(item.kind, item.tool if isinstance(item, sessions.ToolCall) else item.finish) for item in build.timeline()]
    assert kinds == [("tool", "bash"), ("message", "tool-calls"), ("tool", "read"), ("message", "tool-calls"),
                     ("tool", "bash"), ("message", "tool-calls"), ("tool", "task"), ("message", "tool-calls"),
                     ("tool", "bash"), ("message", "tool-calls"), ("message", "stop")]


def test_one_session_by_id_and_counts(db: Path, source: Source) -> None:
    with OpenCodeHistory.open(db) as history:
        assert history.count_sessions() == 3
        assert history.count_parts() == 34
        found = history.session(source.meta["childSessions"][0])
        assert found is not None and found.parent_id == source.meta["rootSessions"][0]
        assert history.session("ses_nope") is None


# ---------------------------------------------------------------------------------------------
# since


def test_since_keeps_sessions_created_at_or_after(db: Path) -> None:
    build, child, plan = read_all(db)
    assert [s.id for s in read_all(db, since=child.time_created)] == [child.id, plan.id]
    assert [s.id for s in read_all(db, since=child.time_created + 1)] == [plan.id]
    assert [s.id for s in read_all(db, since=plan.time_created + 1)] == []
    assert [s.id for s in read_all(db, since=0)] == [build.id, child.id, plan.id]
    moment = datetime.fromtimestamp(child.time_created / 1000, tz=timezone.utc)
    assert [s.id for s in read_all(db, since=moment)] == [child.id, plan.id]
    naive = moment.replace(tzinfo=None)  # naive means UTC
    assert [s.id for s in read_all(db, since=naive)] == [child.id, plan.id]
    with OpenCodeHistory.open(db) as history:
        assert history.count_sessions(since=child.time_created) == 2
        assert history.count_parts(since=child.time_created) == child.part_count + plan.part_count
        assert history.count_parts(since=plan.time_created + 1) == 0


# ---------------------------------------------------------------------------------------------
# read-only, and OpenCode writing at the same time (WAL)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reading_never_writes_the_database(db: Path) -> None:
    """A closed WAL database (OpenCode not running): the file is unchanged; SQLite creates an
    empty -wal and a -shm beside it, as OpenCode itself would, and a read-only connection
    leaves them."""
    before = _digest(db)
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()
    with OpenCodeHistory.open(db) as history:
        assert not history.immutable
        list(history.sessions())
        with pytest.raises(OpenCodeHistoryError, match="readonly|read-only|attempt to write"):
            history._query("DELETE FROM session")
    assert _digest(db) == before
    assert Path(f"{db}-wal").stat().st_size == 0
    assert Path(f"{db}-shm").exists()
    # OpenCode's next read-write connection takes them over and removes them when it closes
    writer = sqlite3.connect(db)
    assert writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    writer.close()
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()
    assert _digest(db) == before


def _add_session(writer: sqlite3.Connection, number: int, template: dict[str, Any]) -> None:
    sid = f"ses_writer{number:06d}"
    writer.execute(
        "INSERT INTO session (id, project_id, slug, directory, title, version, time_created, time_updated, cost) "
        "VALUES (?, ?, 'slug', '/w', 'written meanwhile', '1.18.33', ?, ?, 0.5)",
        (sid, template["project_id"], 4_000_000_000_000 + number, 4_000_000_000_000 + number))
    writer.execute("INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES (?, ?, ?, ?, ?)",
                   (f"msg_w{number}", sid, 4_000_000_000_000 + number, 4_000_000_000_000 + number,
                    json.dumps({"role": "assistant", "agent": "build", "providerID": "p", "modelID": "m",
                                "cost": 0.5, "tokens": {"input": 1, "output": 2, "reasoning": 0,
                                                        "cache": {"read": 0, "write": 0}},
                                "time": {"created": 1, "completed": 2}})))
    for k in range(20):
        writer.execute("INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) "
                       "VALUES (?, ?, ?, 1, 1, ?)",
                       (f"prt_w{number}_{k:02d}", f"msg_w{number}", sid,
                        json.dumps({"type": "tool", "tool": "bash", "callID": f"c{number}_{k}",
                                    "state": {"status": "completed", "input": {"command": "true"}, "output": "",
                                              "metadata": {"exit": 0}, "title": "true",
                                              "time": {"start": k, "end": k + 1}}})))


def test_a_concurrent_writer_neither_blocks_nor_tears_the_read(db: Path) -> None:
    """OpenCode's pattern: one WAL writer committing while we read. The reader sees the snapshot
    of its start (never half a session), is never blocked, and a new read sees the new rows."""
    writer = sqlite3.connect(db, timeout=5, isolation_level=None, check_same_thread=False)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("PRAGMA foreign_keys = ON")
    template = {"project_id": writer.execute("SELECT project_id FROM session LIMIT 1").fetchone()[0]}
    # a write transaction left open (uncommitted) while the reader starts
    writer.execute("BEGIN IMMEDIATE")
    _add_session(writer, 0, template)

    stop = threading.Event()
    written: list[int] = []
    errors: list[BaseException] = []

    def write_meanwhile() -> None:
        try:
            number = 1
            while not stop.is_set() and number < 400:
                writer.execute("BEGIN IMMEDIATE")
                _add_session(writer, number, template)
                writer.execute("COMMIT")
                written.append(number)
                number += 1
                if number % 50 == 0:
                    writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with OpenCodeHistory.open(db) as history:
        assert history.count_sessions() == 3  # the open write transaction is invisible
        writer.execute("COMMIT")
        thread = threading.Thread(target=write_meanwhile)
        thread.start()
        try:
            seen = []
            for session in history.sessions():
                seen.append(session.id)
                while len(written) < 5 * len(seen) and thread.is_alive():
                    threading.Event().wait(0.005)  # let the writer commit sessions during the read
            assert history.count_sessions() == len(seen) == 3  # one snapshot for the whole read
        finally:
            stop.set()
            thread.join(10)
    assert not errors, errors
    assert len(written) >= 5
    sessions = read_all(db)
    assert len(sessions) == 3 + 1 + len(written)
    assert all(len(s.tool_calls) == 20 and s.cost == 0.5 for s in sessions[3:])
    writer.close()


def test_reading_while_a_writer_holds_the_database_open_creates_nothing_new(db: Path) -> None:
    """While OpenCode runs, -wal and -shm are OpenCode's: the reader uses them and adds nothing."""
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("UPDATE session SET title = title")  # WAL content not yet checkpointed
    listing = sorted(p.name for p in db.parent.iterdir())
    with OpenCodeHistory.open(db) as history:
        assert len(list(history.sessions())) == 3
    assert sorted(p.name for p in db.parent.iterdir()) == listing
    writer.close()


def test_immutable_fallback_when_no_wal_can_be_created(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database on read-only media, without -wal/-shm: mode=ro cannot open it, nobody can be
    writing it, so it is read as an immutable file."""
    real_open = oh._open

    def refuse_plain_read_only(uri: str) -> sqlite3.Connection:
        if "immutable=1" not in uri:
            raise sqlite3.OperationalError("unable to open database file")
        return real_open(uri)

    monkeypatch.setattr(oh, "_open", refuse_plain_read_only)
    with OpenCodeHistory.open(db) as history:
        assert history.immutable
        assert len(list(history.sessions())) == 3
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()


# ---------------------------------------------------------------------------------------------
# an unknown layout, and files that are not OpenCode's


@pytest.mark.parametrize("change, missing", [
    ("ALTER TABLE part RENAME COLUMN data TO payload", "column part.data"),
    ("DROP TABLE part", "table part"),
    ("ALTER TABLE session RENAME COLUMN parent_id TO parent", "column session.parent_id"),
])
def test_an_unknown_layout_is_one_sentence_before_anything_is_read(db: Path, change: str, missing: str) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA foreign_keys = OFF")
        connection.execute(change)
    with pytest.raises(OpenCodeSchemaError) as caught:
        OpenCodeHistory.open(db)
    assert str(caught.value) == (
        f"OpenCode's database {db} has a layout agent-tracker cannot read: it lacks {missing} "
        f"(agent-tracker reads the layout of OpenCode 1.18.33); nothing was read.")
    assert caught.value.missing == (missing,)


def test_several_missing_pieces_are_named_together(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE session (id TEXT, directory TEXT)")
        connection.execute("CREATE TABLE message (id TEXT, session_id TEXT, time_created INTEGER, data TEXT)")
    with pytest.raises(OpenCodeSchemaError) as caught:
        OpenCodeHistory.open(path)
    assert "it lacks column session.project_id, column session.parent_id, column session.title, " \
           "column session.time_created, column session.time_updated and table part " in str(caught.value)
    assert "\n" not in str(caught.value)


def test_files_that_are_not_opencode_databases(tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("not a database at all, but long enough to have a header" * 20)
    with pytest.raises(OpenCodeHistoryError, match=r"^.*notes\.db is not an SQLite database OpenCode wrote \(file is not a database\)\.$"):
        OpenCodeHistory.open(text)
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(OpenCodeSchemaError, match="lacks table session, table message and table part"):
        OpenCodeHistory.open(empty)
    with pytest.raises(OpenCodeHistoryError, match=r"^There is no OpenCode database at .*missing\.db\.$"):
        OpenCodeHistory.open(tmp_path / "missing.db")


# ---------------------------------------------------------------------------------------------
# rows the reader must survive (synthetic, on the real schema)


def _empty_real_schema(path: Path) -> sqlite3.Connection:
    """The real tables (DDL from the fixture itself), no rows."""
    source = sqlite3.connect(f"file:{FIXTURES / 'opencode.db'}?mode=ro&immutable=1", uri=True)
    ddl = [sql for (sql,) in source.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name IN ('project', 'session', 'message', 'part')"
        " ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END, name")]
    source.close()
    connection = sqlite3.connect(path, isolation_level=None)
    for sql in ddl:
        connection.execute(sql)
    connection.execute("INSERT INTO project (id, worktree, time_created, time_updated, sandboxes) "
                       "VALUES ('prj', '/work', 1, 1, '[]')")
    connection.execute("INSERT INTO session (id, project_id, slug, directory, title, version, time_created, "
                       "time_updated) VALUES ('ses_a', 'prj', 's', '/work', 't', '1.18.33', 10, 20)")
    return connection


def _part(connection: sqlite3.Connection, part_id: str, data: Any, message: str = "msg_a") -> None:
    connection.execute("INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) "
                       "VALUES (?, ?, 'ses_a', 5, 5, ?)",
                       (part_id, message, data if isinstance(data, str) else json.dumps(data)))


def test_odd_rows_are_skipped_and_named(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    connection = _empty_real_schema(path)
    connection.execute("INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES "
                       "('msg_a', 'ses_a', 11, 11, ?), ('msg_b', 'ses_a', 12, 12, '{broken')",
                       (json.dumps({"role": "assistant", "mode": "build", "cost": 0.25,
                                    "tokens": {"input": 3, "output": 4, "reasoning": 1,
                                               "cache": {"read": 5, "write": 6}},
                                    "time": {"created": 11},
                                    "error": {"name": "MessageAbortedError", "data": {}}}),))
    _part(connection, "prt_1", {"type": "step-finish", "reason": "tool-calls", "cost": 0.1,
                                "tokens": {"input": 1, "output": 2, "reasoning": 0, "cache": {"read": 2, "write": 3}}})
    _part(connection, "prt_2", {"type": "step-finish", "reason": "stop", "cost": 0.15,
                                "tokens": {"input": 2, "output": 2, "reasoning": 1, "cache": {"read": 3, "write": 3}}})
    _part(connection, "prt_3", {"type": "tool", "tool": "edit", "callID": "c_run",
                                "state": {"status": "running", "input": {"filePath": "a"}, "time": {"start": 7}}})
    _part(connection, "prt_4", "{not json")
    _part(connection, "prt_5", {"type": "tool", "tool": "bash", "callID": "c_killed",
                                "state": {"status": "completed", "input": {"command": "sleep 9"}, "output": "",
                                          "metadata": {"exit": None}, "title": "sleep", "time": {"start": 3, "end": 4}}})
    _part(connection, "prt_6", {"type": "tool", "tool": "mcp_x", "callID": "c_mcp",
                                "state": {"status": "completed", "input": {}, "output": "boom",
                                          "metadata": {"isError": True}, "title": "x", "time": {"start": 8, "end": 9}}})
    _part(connection, "prt_7", {"type": "tool", "tool": "write", "callID": "c_big",
                                "state": {"status": "completed", "input": {"filePath": "f", "content": "x" * 5000},
                                          "output": "y" * 9000, "metadata": {}, "title": "f",
                                          "time": {"start": 10, "end": 11}}})
    _part(connection, "prt_8", {"type": "tool", "tool": "odd", "callID": "c_odd", "state": {"status": "weird"}})
    _part(connection, "prt_9", {"type": "text", "text": "hello"})
    connection.close()

    with OpenCodeHistory.open(path) as history:
        (session,) = history.sessions()
        assert history.skipped_rows == 3
        assert history.problems == [
            "part prt_4 of session ses_a: data is not valid JSON",
            "tool part prt_8 of session ses_a: unknown state 'weird'",
            "message msg_b of session ses_a: data is not valid JSON",
        ]
    assert (session.cost, session.tokens) == (0.0, Tokens())  # the columns' defaults
    (message,) = session.messages
    assert (message.agent, message.error, message.time_completed, message.tokens.total) == (
        "build", "MessageAbortedError", None, 19)
    assert [s.reason for s in message.steps] == ["tool-calls", "stop"]
    assert sum(s.cost for s in message.steps) == pytest.approx(message.cost)
    assert sum((s.tokens for s in message.steps), Tokens()) == message.tokens
    calls = {c.call_id: c for c in session.tool_calls}
    assert [c.call_id for c in session.tool_calls] == ["c_killed", "c_run", "c_mcp", "c_big"]
    assert (calls["c_run"].finished, calls["c_run"].success) == (False, False)
    assert (calls["c_killed"].success, calls["c_killed"].exit_code) == (False, None)
    assert calls["c_mcp"].success is False
    big = calls["c_big"]
    assert big.success and big.output == excerpts.excerpt("y" * 9000) and big.input["content"] == excerpts.excerpt("x" * 5000)
    assert "[agent-tracker: 4904 characters omitted]" in big.output
    assert session.part_count == 9


def test_a_layout_without_the_optional_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE session (id TEXT, project_id TEXT, parent_id TEXT, directory TEXT, "
                           "title TEXT, time_created INTEGER, time_updated INTEGER)")
        connection.execute("CREATE TABLE message (id TEXT, session_id TEXT, time_created INTEGER, data TEXT)")
        connection.execute("CREATE TABLE part (id TEXT, message_id TEXT, session_id TEXT, time_created INTEGER, "
                           "data TEXT)")
        connection.execute("INSERT INTO session VALUES ('ses_1', 'p', NULL, '/d', 't', 1, 2)")
    (session,) = read_all(path)
    assert (session.cost, session.tokens, session.agent, session.model_id, session.worktree) == (None, None, None, None, None)


# ---------------------------------------------------------------------------------------------
# where the database is


def test_locating_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    env = {"HOME": str(home)}
    default = home / ".local" / "share" / "opencode" / "opencode.db"
    assert opencode_database_path(env) == default
    assert opencode_database_path({**env, "XDG_DATA_HOME": str(tmp_path / "x")}) == tmp_path / "x" / "opencode" / "opencode.db"
    assert opencode_database_path({**env, "OPENCODE_DB": "/abs/o.db"}) == Path("/abs/o.db")
    assert opencode_database_path({**env, "OPENCODE_DB": "rel.db"}) == default.parent / "rel.db"
    assert opencode_database_path({**env, "OPENCODE_DB": ":memory:"}) is None
    assert opencode_database_path(env, channel="dev") == default.parent / "opencode-dev.db"
    assert opencode_database_path(env, channel="feat/x y") == default.parent / "opencode-feat-x-y.db"
    assert opencode_database_path({**env, "OPENCODE_DISABLE_CHANNEL_DB": "true"}, channel="dev") == default
    for channel in ("latest", "beta", "prod"):
        assert opencode_database_path(env, channel=channel) == default

    with pytest.raises(OpenCodeHistoryError, match="^No OpenCode database in .*; pass --db PATH or set OPENCODE_DB\\.$"):
        locate_database(env=env)
    default.parent.mkdir(parents=True)
    older, newer = default.parent / "opencode-beta2.db", default.parent / "opencode-dev.db"
    older.write_bytes(b"")
    newer.write_bytes(b"")
    os.utime(older, (1, 1))
    (default.parent / "opencode-dev.db-wal").write_bytes(b"")  # never a candidate
    assert location.database_candidates(env) == [newer, older]
    assert locate_database(env=env) == newer  # only channel databases: the newest
    default.write_bytes(b"")
    assert location.database_candidates(env) == [default, newer, older]
    assert locate_database(env=env) == default
    assert locate_database(older, env=env) == older  # --db wins
    custom = tmp_path / "custom.db"
    custom.write_bytes(b"")
    assert locate_database(env={**env, "OPENCODE_DB": str(custom)}) == custom
    with pytest.raises(OpenCodeHistoryError, match="^OPENCODE_DB is :memory:"):
        locate_database(env={**env, "OPENCODE_DB": ":memory:"})
    with pytest.raises(OpenCodeHistoryError, match=r"\(from OPENCODE_DB\)\.$"):
        locate_database(env={**env, "OPENCODE_DB": "nope.db"})
    # the process environment by default
    monkeypatch.setenv("OPENCODE_DB", str(custom))
    assert locate_database() == custom


# ---------------------------------------------------------------------------------------------
# the plugin's rules, mirrored


def test_the_mirrored_rules_agree_with_the_plugin() -> None:
    """excerpt, bound_args and tool_succeeded against util.js itself (node), on the same inputs."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    cases = {
        "excerpt": ["short", "a" * 4160, "a" * 4161, "é" * 5000 + "z" * 100],
        "boundArgs": [{"content": "c" * 6000, "n": 1, "s": "short"}, {"x": [1, 2]}],
        "toolSucceeded": [["bash", {"exit": 0}], ["bash", {"exit": 1}], ["bash", {"exit": None}], ["bash", {}],
                          ["read", {}], ["read", {"error": "x"}], ["mcp", {"isError": True}], ["x", {"exit": 2}],
                          ["x", {"exit": 0}], ["x", {"isError": False}]],
    }
    util = ROOT / "examples" / "opencode-plugin" / "plugin" / "agent-tracker" / "util.js"
    script = (f"import * as u from {json.dumps(util.as_uri())};\n"
              f"const c = {json.dumps(cases)};\n"
              "console.log(JSON.stringify({excerpt: c.excerpt.map((t) => u.excerpt(t)),"
              " boundArgs: c.boundArgs.map((a) => u.boundArgs(a)),"
              " toolSucceeded: c.toolSucceeded.map(([t, m]) => u.toolSucceeded(t, {metadata: m}))}));")
    result = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    expected = json.loads(result.stdout)
    assert [excerpts.excerpt(t) for t in cases["excerpt"]] == expected["excerpt"]  # type: ignore[arg-type]
    assert [dict(excerpts.bound_args(a)) for a in cases["boundArgs"]] == expected["boundArgs"]  # type: ignore[arg-type]
    assert [excerpts.tool_succeeded(t, m) for t, m in cases["toolSucceeded"]] == expected["toolSucceeded"]  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# the benchmark's generated database


def test_the_generated_database_has_the_real_layout(tmp_path: Path) -> None:
    """bench/generate_opencode_db.py copies the real DDL and the real row shapes; the reader reads
    every row of it and the session totals are the sums of their messages, as in OpenCode's."""
    import sys

    sys.path.insert(0, str(ROOT))
    from bench.generate_opencode_db import generate

    path = tmp_path / "generated.db"
    made = generate(path, sessions=30, parts=3_007)
    assert (made["sessions"], made["parts"]) == (30, 3_007)

    def layout(database: Path) -> list[tuple[str, str]]:
        connection = sqlite3.connect(f"file:{database}?mode=ro&immutable=1", uri=True)
        try:
            return sorted(connection.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"))
        finally:
            connection.close()

    assert layout(path) == layout(FIXTURES / "opencode.db")
    with path.open("rb") as header:  # bytes 18-19 of the header are 2, 2 in WAL mode, as OpenCode keeps it
        assert header.read(20)[18:20] == b"\x02\x02"
    sessions = read_all(path)
    assert len(sessions) == 30 and sum(s.part_count for s in sessions) == 3_007
    assert any(s.parent_id for s in sessions)
    for session in sessions:
        assert session.tokens == session.message_tokens
        assert session.cost == pytest.approx(session.message_cost, rel=1e-9, abs=1e-12)
        assert session.messages and all(len(m.steps) == 1 for m in session.messages)
        assert all(c.finished for c in session.tool_calls)
    calls = [c for s in sessions for c in s.tool_calls]
    assert {c.tool for c in calls} >= {"bash", "read"}
    assert any(not c.success for c in calls) and any(c.success for c in calls)


def test_tool_calls_equal_what_the_plugin_reports_live(db: Path, source: Source) -> None:
    """Per callID, the reader's input, output excerpt, title and success equal what the plugin
    got live: tool.execute.after for calls that returned, the tool part in state error for those
    that threw (OpenCode calls no tool.execute.after for them)."""
    after: dict[str, dict[str, Any]] = {}
    errors: dict[str, dict[str, Any]] = {}
    for line in source.recording.read_text().splitlines():
        hook = json.loads(line)
        if hook["hook"] == "tool.execute.after":
            after[hook["input"]["callID"]] = hook
        elif hook["hook"] == "event" and hook["input"]["type"] == "message.part.updated":
            part = hook["input"]["properties"]["part"]
            if part["type"] == "tool" and part["state"]["status"] == "error":
                errors[part["callID"]] = part
    calls = [c for s in read_all(db) for c in s.tool_calls]
    assert len(calls) == 7 and len(after) == 6 and len(errors) == 1
    for call in calls:
        if call.status == "error":
            part = errors[call.call_id]
            assert (call.session_id, call.tool, call.output, dict(call.input)) == (
                part["sessionID"], part["tool"], excerpts.excerpt(part["state"]["error"]), part["state"]["input"])
            continue
        hook = after[call.call_id]
        assert (call.session_id, call.tool, dict(call.input)) == (
            hook["input"]["sessionID"], hook["input"]["tool"], hook["input"]["args"])
        assert (call.output, call.title) == (excerpts.excerpt(hook["output"]["output"]), hook["output"]["title"])
        assert call.success == excerpts.tool_succeeded(call.tool, hook["output"]["metadata"])


def test_a_path_that_needs_quoting_in_the_uri(source: Source, tmp_path: Path) -> None:
    folder = tmp_path / "odd name #1 ?x=%20&mode=rw"
    folder.mkdir()
    path = source.copy_to(folder)
    with OpenCodeHistory.open(path) as history:
        assert history.count_sessions() == 3 and not history.immutable
    assert sorted(p.name for p in folder.iterdir()) == ["opencode.db", "opencode.db-shm", "opencode.db-wal"]
