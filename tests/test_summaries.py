"""Issue 25: the per-session summaries, kept in the flush transaction, answer the report exactly.

Random histories (hypothesis) go through the real TrackingService on a real LMDB store: sessions
with subagents, model switches, tool calls, commits, grades (also after the session ended and from
other sessions), bugs (for a commit, for a session, for neither), usage, deleted and ended sessions,
two services (two bridges' buffers) flushing into one database in turn. After every history:
incremental summaries == summaries recomputed from the events (doctor --summaries) == today's scan,
for the report under several filters. Real bridges then cover kill -9 inside a flush with journal
replay, and two bridges writing at once.
"""

from __future__ import annotations

import asyncio
import math
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.bridges import bridge_env, start_bridge
from support.tracking import bash_commit, close_harness, make_harness, open_store, tool

from bridge import summaries
from bridge.cli import main
from bridge.report.build import build_report
from bridge.store import SUMMARIES_MARKER, Store
from bridge.summaries.check import differences
from bridge.summaries.maintain import rebuild
from bridge.summaries.rows import pack, unpack
from bridge.tracking.state import EventRejected

summaries.enable()

AGENTS = [{"id": "build", "provider": "anthropic", "model": "claude-x"},
          {"id": "build", "provider": "openai", "model": "gpt-5"},
          {"id": "plan", "provider": "openai", "model": "gpt-5"}]
START = datetime(2026, 3, 1, 22, 0, tzinfo=timezone.utc)
FILTERS: list[dict[str, Any]] = [{}, {"since": "2026-03-02"}, {"until": "2026-03-02"}, {"agent": "build"},
                                 {"model": "openai"}, {"project": "shop"}, {"stack": "python"},
                                 {"group": "all"}, {"by_version": False}]  # the last: report --by agent-model


def numbers_differ(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two report answers differ (sums of money compared to 1e-9, everything else exactly)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [found for name in sorted(a.keys() | b.keys()) if name not in ("durationMs", "generatedAt", "source",
                                                                             "parallel")
                for found in numbers_differ(a.get(name), b.get(name), f"{path}.{name}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} != {len(b)} entries"]
        return [found for index, (x, y) in enumerate(zip(a, b)) for found in numbers_differ(x, y, f"{path}[{index}]")]
    if isinstance(a, float) and isinstance(b, float):
        return [] if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def assert_summaries_answer(store: Store) -> None:
    with store.read() as view:
        if view.count("sessions") or view.count("activities"):
            assert view.meta(SUMMARIES_MARKER) is not None
            assert differences(view) == []
    for options in FILTERS:
        scanned = build_report(store, scan=True, **options)
        summarised = build_report(store, **options)
        assert summarised.source == "summaries"
        assert numbers_differ(scanned.to_wire(), summarised.to_wire()) == [], options


# -- random histories ------------------------------------------------------------------------------------

step = st.one_of(
    st.tuples(st.just("session"), st.integers(0, 2), st.integers(-1, 5), st.integers(0, 1)),
    st.tuples(st.just("switch"), st.integers(0, 7), st.integers(0, 2)),
    st.tuples(st.just("tool"), st.integers(0, 7), st.booleans()),
    st.tuples(st.just("commit"), st.integers(0, 7)),
    st.tuples(st.just("grade"), st.integers(0, 15), st.sampled_from([-1, 1, 2, 5]), st.sampled_from(["user", "agent"]),
              st.integers(-1, 7)),
    st.tuples(st.just("bug"), st.integers(0, 7), st.integers(-1, 15)),
    st.tuples(st.just("usage"), st.integers(0, 7), st.integers(0, 3), st.integers(0, 2)),
    st.tuples(st.just("end"), st.integers(0, 7), st.booleans()),
    # issue 24: the session's agent (or another) runs a configuration version (3 prompts), so setups split by version
    st.tuples(st.just("configure"), st.integers(0, 7), st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.just("flush"), st.integers(0, 1)),
    st.tuples(st.just("hours"), st.integers(1, 20)),
)


class History:
    """Plays steps into two services on one store (a flush of each is one transaction)."""

    def __init__(self, store: Store, shop: Path, other: Path):
        self.harnesses = [make_harness(store, journal=False), make_harness(store, journal=False)]
        self.projects = [str(shop), str(other)]
        self.sessions: list[str] = []
        self.session_projects: dict[str, str] = {}
        self.commits: list[tuple[str, str, str]] = []  # (hash, session, project)
        self.now = START
        self.serial = 0

    def send(self, which: int, method: str, params: dict[str, Any]) -> None:
        self.now += timedelta(minutes=7)
        try:
            self.harnesses[which].send(method, params, self.now.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
        except EventRejected:
            pass  # e.g. a grade for a commit still in the other bridge's buffer: refused, as the bridge does

    def play(self, action: tuple[Any, ...]) -> None:
        self.serial += 1
        kind = action[0]
        if kind == "session":
            _, agent, parent, project = action
            session = f"s{len(self.sessions)}"
            params: dict[str, Any] = {"sessionID": session, "directory": self.projects[project], "agent": AGENTS[agent]}
            if 0 <= parent < len(self.sessions):
                params["parentID"] = self.sessions[parent]
            self.sessions.append(session)
            self.session_projects[session] = os.path.realpath(self.projects[project])
            self.send((len(self.sessions) - 1) % 2, "session.created", params)
            return
        if kind == "hours":
            self.now += timedelta(hours=action[1])
            return
        if kind == "flush":
            self.harnesses[action[1]].service.flush()
            return
        if not self.sessions:
            return
        session = self.sessions[action[1] % len(self.sessions)]
        # A session's events go to the bridge of its OpenCode window; grades and bugs may come from
        # any process (the CLI, another window).
        which = self.serial % 2 if kind in ("grade", "bug") else self.sessions.index(session) % 2
        if kind == "switch":
            self.send(which, "session.updated", {"sessionID": session, "agent": AGENTS[action[2]]})
        elif kind == "tool":
            self.send(which, "tool.executed", tool(session, f"c{self.serial}", success=action[2]))
        elif kind == "commit":
            short = f"{self.serial:07x}"
            self.send(which, "tool.executed", bash_commit(session, f"c{self.serial}", short))
            project = self._project_of(session)
            if project is not None:
                self.commits.append((short, session, project))
        elif kind == "grade" and self.commits:
            commit_hash, _, project = self.commits[action[1] % len(self.commits)]
            params = {"grade": action[2], "grader": action[3], "commitHash": commit_hash, "projectPath": project}
            if 0 <= action[4] < len(self.sessions):
                params["sessionID"] = self.sessions[action[4]]
            self.send(which, "grade", params)
        elif kind == "bug":
            params = {"agentId": "build", "sessionID": session}
            if 0 <= action[2] < len(self.commits):
                commit_hash, _, project = self.commits[action[2]]
                params.update({"commitHash": commit_hash, "projectPath": project})
            self.send(which, "bug.reported", params)
        elif kind == "usage":
            self.send(which, "usage.recorded", {
                "sessionID": session, "messageID": f"m{action[2]}", "cost": 0.1 * (action[2] + 1),
                "tokens": {"input": 100 * action[2], "output": 7, "reasoning": 0, "cache": {"read": 1, "write": 0}},
                "agent": AGENTS[action[3]], "durationMs": 1000})
        elif kind == "end":
            self.send(which, "session.deleted" if action[2] else "session.idle", {"sessionID": session})
        elif kind == "configure":
            self.send(which, "agent.configured", {
                "sessionID": session, "agentId": AGENTS[action[2]]["id"],
                "definition": {"prompt": f"You are careful, variant {action[3]}.", "temperature": 0.1 * action[3]}})

    def _project_of(self, session: str) -> str | None:
        return self.session_projects.get(session)

    def finish(self) -> None:
        for harness in self.harnesses:
            harness.service.flush()


@pytest.fixture
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("projects")
    shop, other = root / "shop", root / "site"
    shop.mkdir()
    other.mkdir()
    (shop / "pyproject.toml").write_text('[project]\ndependencies = ["fastapi"]\n')
    (other / "package.json").write_text('{"dependencies": {"react": "18"}}\n')
    return shop, other


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=10, max_size=80))
def test_random_histories_summaries_equal_the_scan(steps: list[tuple[Any, ...]], folders: tuple[Path, Path],
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    store = open_store(tmp_path_factory.mktemp("db") / "db.lmdb")
    history = History(store, *folders)
    try:
        history.play(("session", 0, -1, 0))
        for action in steps:
            history.play(action)
        history.finish()
        assert_summaries_answer(store)
    finally:
        store.close()


# -- the CLI: doctor, a database from before the summaries -------------------------------------------------

def one_session(store: Store, shop: Path) -> None:
    harness = make_harness(store, journal=False)
    harness.send("session.created", {"sessionID": "s1", "directory": str(shop), "agent": AGENTS[0]})
    harness.send("tool.executed", bash_commit("s1", "c1", "abc1234"))
    harness.send("grade", {"grade": 5, "grader": "user", "commitHash": "abc1234", "sessionID": "s1"})
    harness.service.flush()
    harness.send("session.deleted", {"sessionID": "s1"})
    harness.send("bug.reported", {"agentId": "build", "sessionID": "s1"})  # after the session ended
    harness.service.flush()


def test_doctor_finds_a_changed_summary_and_rebuilds_it(tmp_path: Path, folders: tuple[Path, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "db.lmdb"
    store = open_store(database)
    one_session(store, folders[0])

    def damage(view: Any) -> None:  # what a bug in the summaries would leave behind
        for row_key, stored in list(view.scan("summaries", "D\x00a\x00")):
            row = unpack(stored)
            view.put("summaries", row_key, pack({**row, "commits": row.get("commits", 0) + 1}))

    store.write(damage)
    store.close()
    assert main(["doctor", "--summaries", "--database", str(database)]) == 1
    out = capsys.readouterr().out
    assert "1 number in the summaries" in out and "differs from the events" in out  # the day row
    assert "commits is 2 in the summaries, 1 from the events" in out
    assert main(["doctor", "--rebuild", "--database", str(database), "--json"]) == 0
    assert '"rebuilt": true' in capsys.readouterr().out
    assert main(["doctor", "--database", str(database), "--json"]) == 0
    assert '"differences": []' in capsys.readouterr().out


def test_a_database_from_before_the_summaries(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    """Readers scan and say so once; the first write builds the summaries in its transaction."""
    store = open_store(tmp_path / "db.lmdb")
    one_session(store, folders[0])

    def forget(view: Any) -> None:  # as an agent-tracker from before the summaries left it
        for row_key, _ in list(view.scan("summaries")):
            view.delete("summaries", row_key)
        view.delete("meta", SUMMARIES_MARKER)

    store.write(forget)
    first, second = build_report(store), build_report(store)
    assert (first.source, second.source) == ("scan", "scan")
    assert first.source_note is not None and "no summaries yet" in first.source_note
    assert second.source_note is None  # said once
    harness = make_harness(store, journal=False)
    harness.send("session.created", {"sessionID": "s2", "directory": str(folders[0]), "agent": AGENTS[2]})
    harness.service.flush()
    assert_summaries_answer(store)
    report = build_report(store)
    assert report.source == "summaries"
    assert (report.totals["sessions"], report.totals["commits"], report.totals["grades"], report.totals["bugs"]) \
        == (2, 1, 1, 1)
    store.close()


def test_a_time_of_day_in_the_filters_reads_the_events(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    store = open_store(tmp_path / "db.lmdb")
    one_session(store, folders[0])
    report = build_report(store, since="2026-01-01T12:00Z")
    assert report.source == "scan" and report.source_note is not None and "time of day" in report.source_note
    assert build_report(store, since="2026-01-01").source == "summaries"
    store.close()


# -- real bridges: kill -9 inside the flush, two bridges at once ------------------------------------------

async def test_kill_9_while_the_summaries_are_written_then_journal_replay(isolated_home: Path, tmp_path: Path,
                                                                       folders: tuple[Path, Path]) -> None:
    shop = folders[0]
    database = tmp_path / "db.lmdb"
    crashing = await start_bridge(isolated_home, env=bridge_env(isolated_home, AGENT_TRACKER_CRASH_AT="in-summaries:2"))
    try:
        await crashing.initialize(shop, databasePath=str(database))
        crashing.notify("session.created", {"sessionID": "s1", "directory": str(shop), "agent": AGENTS[0]})
        crashing.notify("tool.executed", bash_commit("s1", "c1", "aaa1111"))
        await crashing.request("flush", {})  # the first summarised flush: written
        crashing.notify("tool.executed", bash_commit("s1", "c2", "bbb2222"))
        crashing.notify("grade", {"grade": 2, "grader": "user", "commitHash": "bbb2222", "sessionID": "s1"})
        crashing.notify("session.deleted", {"sessionID": "s1"})  # a flush: killed inside its transaction
        assert await crashing.wait(timeout=20) == -9
    finally:
        crashing.kill()
    store = open_store(database)
    assert build_report(store).totals["commits"] == 1  # the killed flush left nothing behind
    store.close()
    again = await start_bridge(isolated_home)
    try:
        await again.initialize(shop, databasePath=str(database))  # replays the journal
        assert await again.shutdown_and_exit() == 0
    finally:
        again.kill()
    store = open_store(database)
    try:
        assert_summaries_answer(store)
        report = build_report(store)
        assert (report.totals["commits"], report.totals["grades"], report.setups[0].ended_sessions) == (2, 1, 1)
    finally:
        store.close()


async def test_two_bridges_writing_at_once(isolated_home: Path, tmp_path: Path, folders: tuple[Path, Path]) -> None:
    database = tmp_path / "db.lmdb"
    bridges = [await start_bridge(isolated_home), await start_bridge(isolated_home)]
    try:
        for index, bridge in enumerate(bridges):
            await bridge.initialize(folders[index], databasePath=str(database))
        for round_ in range(6):
            for index, bridge in enumerate(bridges):
                session = f"w{index}-{round_}"
                bridge.notify("session.created", {"sessionID": session, "directory": str(folders[index]),
                                                  "agent": AGENTS[(index + round_) % 3]})
                bridge.notify("tool.executed", tool(session, "r1", success=round_ % 2 == 0))
                bridge.notify("tool.executed", bash_commit(session, "c1", f"{index}{round_:06x}"))
                bridge.notify("usage.recorded", {
                    "sessionID": session, "messageID": "m1", "cost": 0.25, "agent": AGENTS[(index + round_) % 3],
                    "tokens": {"input": 10, "output": 5, "reasoning": 0, "cache": {"read": 0, "write": 0}}})
            await asyncio.gather(*(bridge.request("flush", {}) for bridge in bridges))
            # a grade from the other window, for a commit the first one wrote
            bridges[1].notify("grade", {"grade": 5, "grader": "user", "commitHash": f"0{round_:06x}",
                                        "projectPath": str(folders[0])})
        assert [await bridge.shutdown_and_exit() for bridge in bridges] == [0, 0]
    finally:
        for bridge in bridges:
            bridge.kill()
    store = open_store(database)
    try:
        assert_summaries_answer(store)
        assert build_report(store).totals == {"sessions": 12, "subagentSessions": 0, "commits": 12, "grades": 6,
                                              "bugs": 0, "setups": 6, "rankedSetups": 0}
    finally:
        store.close()
