"""The setup report: attribution, exact metrics, the score, ranking, filters, chart, the bridge's
`report` method. Databases are filled through the real TrackingService (or the real bridge)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from support.bridges import start_bridge

from bridge.config import BridgeConfig, MiB, ScoringRules
from bridge.report.build import build_report
from bridge.report.filters import normalise_since, stack_matches
from bridge.report.model import ReportError
from bridge.report.render import render_text
from bridge.report.score import (
    ABANDONED,
    DEFAULT_MIN_SESSIONS,
    ENDED,
    FAILED_CALLS,
    FIXED_UP,
    SLOTS,
    TOOL_CALLS,
    score_parts,
)
from bridge.report.timeline import build_timeline
from bridge.rpc.client import RpcError
from bridge.store import Store
from bridge.tracking.service import TrackingService

CLAUDE = ("anthropic", "claude-sonnet-4-5")
GPT = ("openai", "gpt-5")
OPUS = ("anthropic", "claude-opus-4-1")
QWEN = ("ollama", "qwen3-coder:30b")


class Tracker:
    """A real TrackingService on a real LMDB store, with a controllable clock."""

    def __init__(self, path: Path, default_directory: str | None = None):
        self.store = Store.open(BridgeConfig(database_path=str(path), max_database_size=32 * MiB))
        assert self.store.available, self.store.error
        self.service = TrackingService(self.store, ScoringRules(), journal_id="test",
                                       default_directory=default_directory)
        self.clock = datetime(2026, 10, 1, 9, 0, tzinfo=timezone.utc)
        self.calls = 0
        self.commits = 0xABC0000
        self.last_hash: dict[str, str] = {}

    def now(self) -> str:
        self.clock += timedelta(seconds=1)
        return self.clock.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def at(self, moment: str) -> None:
        """Move the clock (later events are one second apart from here)."""
        self.clock = datetime.fromisoformat(moment.replace("Z", "+00:00")) - timedelta(seconds=1)

    def send(self, method: str, params: dict[str, Any]) -> Any:
        result = self.service.handle(method, params, received_at=self.now())
        if self.service.flush_requested:  # as the bridge does (push, session deleted, reinstate)
            self.flush()
        return result

    def tool(self, sid: str, tool: str = "read", **extra: Any) -> Any:
        self.calls += 1
        return self.send("tool.executed", {"sessionID": sid, "callID": f"call{self.calls}", "tool": tool,
                                           "success": True, **extra})

    def commit(self, sid: str) -> str:
        self.commits += 1
        commit_hash = f"{self.commits:07x}"
        self.tool(sid, "bash", args={"command": "git commit -am 'feat: change'"},
                  output=f"[main {commit_hash}] feat: change {self.commits}\n 1 file changed\n")
        self.last_hash[sid] = commit_hash
        return commit_hash

    def session(self, sid: str, directory: Path | str, agent: str | None, model: tuple[str, str] | None, *,
                tools: int = 1, commits: list[tuple[int | None, int | None]] = (), push: bool = False,
                bug: bool = False, delete: bool = True) -> None:
        """tools plain tool calls (1 XP each), then per commit: the bash commit (1 + 5 XP), an agent
        and a user grade (None = not graded), optionally a bug on the last commit and a push (1 + 10)."""
        params: dict[str, Any] = {"sessionID": sid, "directory": str(directory), "title": f"task {sid}"}
        if agent is not None:
            params["agent"] = {"id": agent, **({"provider": model[0], "model": model[1]} if model else {})}
        self.send("session.created", params)
        for _ in range(tools):
            self.tool(sid)
        for agent_grade, user_grade in commits:
            self.commit(sid)
            if agent_grade is not None:
                self.send("grade", {"sessionID": sid, "grade": agent_grade, "grader": "agent"})
            if user_grade is not None:
                self.send("grade", {"sessionID": sid, "grade": user_grade, "grader": "user", "reason": "ok"})
        if bug:
            self.send("bug.reported", {"sessionID": sid, "description": "regression",
                                       "commitHash": self.last_hash[sid], "projectPath": str(directory)})
            self.send("agent.reinstate", {"agentId": agent, "reason": "reviewed"})
        if push:
            self.tool(sid, "bash", args={"command": "git push"}, output="To origin\n   1111111..2222222  main -> main\n")
        self.send("session.idle", {"sessionID": sid})
        if delete:
            self.send("session.deleted", {"sessionID": sid})

    def flush(self) -> None:
        assert not self.service.flush().errors

    def close(self) -> None:
        self.flush()
        self.store.close()


def make_projects(tmp_path: Path) -> tuple[Path, Path]:
    shop = tmp_path / "projects" / "shop"
    shop.mkdir(parents=True)
    (shop / "pyproject.toml").write_text('[project]\ndependencies = ["fastapi", "uvicorn"]\n')
    web = tmp_path / "projects" / "web"
    web.mkdir(parents=True)
    (web / "package.json").write_text(json.dumps({"dependencies": {"react": "18"},
                                                  "devDependencies": {"typescript": "5"}}))
    return shop, web


def populate(tmp_path: Path, name: str = "db.lmdb") -> tuple[Tracker, Path, Path]:
    """The reference data set (numbers worked out by hand in the tests below)."""
    shop, web = make_projects(tmp_path)
    t = Tracker(tmp_path / name)
    # build | anthropic/claude-sonnet-4-5 | python/fastapi: 3 sessions, 4 commits
    t.session("c1", shop, "build", CLAUDE, tools=2, commits=[(5, 5)], push=True)          # XP 2 + 6 + 11 = 19
    t.session("c2", shop, "build", CLAUDE, tools=3, commits=[(2, 2), (2, 1)])             # XP 3 + 12 = 15
    t.session("c3", shop, "build", CLAUDE, tools=1, commits=[(5, None)])                  # XP 1 + 6 = 7
    # build | openai/gpt-5 | python/fastapi: 3 sessions, 2 commits, 1 bug (then reinstated)
    t.session("g1", shop, "build", GPT, tools=2, commits=[(5, -1)], bug=True)             # XP 2 + 6 = 8
    t.session("g2", shop, "build", GPT, tools=2, commits=[(2, 2)])                        # XP 2 + 6 = 8
    t.session("g3", shop, "build", GPT, tools=0)                                          # XP 0 (no counter)
    # plan | anthropic/claude-opus-4-1 | python/fastapi: 2 sessions (below the minimum sample)
    t.session("p1", shop, "plan", OPUS, tools=4)
    t.session("p2", shop, "plan", OPUS, tools=2)
    # build | anthropic/claude-sonnet-4-5 | typescript/react: 3 sessions
    t.session("w1", web, "build", CLAUDE, tools=1, commits=[(2, 5)], push=True)
    t.session("w2", web, "build", CLAUDE, tools=1, commits=[(2, 2)])
    t.session("w3", web, "build", CLAUDE, tools=1, commits=[(1, 2)])
    # general | ollama/qwen3-coder:30b | typescript/react: 3 sessions
    t.session("q1", web, "general", QWEN, tools=1, commits=[(2, 1)])
    t.session("q2", web, "general", QWEN, tools=1, commits=[(5, -1)])
    t.session("q3", web, "general", QWEN, tools=1, commits=[(2, 2)])
    t.flush()
    return t, shop, web


@pytest.fixture
def reference(tmp_path: Path):
    tracker, shop, web = populate(tmp_path)
    yield tracker, shop, web
    tracker.close()


def rows_by_setup(report) -> dict[tuple[str, str, str], Any]:
    return {(row.agent, row.model, row.stack): row for row in report.setups}


def expected_score(user: list[int], agent: list[int], sessions: int, commits: int, bugs: int, *,
                   ended: int | None = None, abandoned: int = 0, calls: int = 0, failed: int = 0,
                   fixed_up: int = 0) -> float:
    """The documented formula (docs/README-report.md, `report --help`), written out independently of
    bridge.report. ``ended`` defaults to every session (the test sessions are deleted when done)."""
    def part(grades: list[int]) -> float:
        smoothed = (sum(grades) + 2 * 1) / (len(grades) + 2)
        return (smoothed + 1) / 6
    per_session = commits / sessions
    productivity = per_session / (per_session + 1)
    reliability = 1 - min(1, bugs / commits) if commits else (0.0 if bugs else 1.0)
    ended = sessions if ended is None else ended
    completion = 1 - abandoned / ended if ended else 1.0
    tool_success = 1 - failed / calls if calls else 1.0
    clean_commits = 1 - fixed_up / commits if commits else 1.0
    return 100 * (0.35 * part(user) + 0.10 * part(agent) + 0.20 * productivity + 0.15 * reliability
                  + 0.10 * completion + 0.05 * tool_success + 0.05 * clean_commits)


# -- metrics and score ----------------------------------------------------------------------------------

def test_setup_metrics_are_exact(reference) -> None:
    tracker, shop, web = reference
    report = build_report(tracker.store)
    rows = rows_by_setup(report)
    claude_shop = rows[("build", "anthropic/claude-sonnet-4-5", "python/fastapi")]
    assert (claude_shop.sessions, claude_shop.commits, claude_shop.bugs, claude_shop.projects) == (3, 4, 0, 1)
    assert claude_shop.commits_per_session == 4 / 3
    assert claude_shop.xp_per_session == (19 + 15 + 7) / 3
    assert (claude_shop.agent_grades, claude_shop.mean_agent_grade) == (4, (5 + 2 + 2 + 5) / 4)
    assert (claude_shop.user_grades, claude_shop.mean_user_grade) == (3, (5 + 2 + 1) / 3)
    assert claude_shop.excellence_share == 3 / 7 and claude_shop.bad_share == 0
    # the grade distributions over -1/1/2/5 (what the posterior of the score is drawn from)
    assert claude_shop.user_grade_counts == {-1: 0, 1: 1, 2: 1, 5: 1}
    assert claude_shop.agent_grade_counts == {-1: 0, 1: 0, 2: 2, 5: 2}
    assert claude_shop.bugs_per_commit == 0
    assert claude_shop.score == pytest.approx(expected_score([5, 2, 1], [5, 2, 2, 5], 3, 4, 0), abs=1e-12)
    assert claude_shop.parts == {"userGrade": 0.5, "agentGrade": pytest.approx((16 / 6 + 1) / 6),
                                 "productivity": pytest.approx(4 / 7), "reliability": 1.0, "completion": 1.0,
                                 "toolSuccess": 1.0, "cleanCommits": 1.0}
    # every session was deleted: ended; each committed; 2 + 3 + 1 tool calls + 4 bash commits, none failed
    assert (claude_shop.ended_sessions, claude_shop.abandoned_sessions) == (3, 0)
    assert (claude_shop.tool_calls, claude_shop.failed_tool_calls, claude_shop.tool_failure_rate) == (11, 0, 0)

    gpt = rows[("build", "openai/gpt-5", "python/fastapi")]
    assert (gpt.sessions, gpt.commits, gpt.bugs, gpt.bugs_per_commit) == (3, 2, 1, 0.5)
    assert gpt.xp_per_session == (8 + 8 + 0) / 3
    assert (gpt.mean_agent_grade, gpt.mean_user_grade) == (3.5, 0.5)
    assert (gpt.excellence_share, gpt.bad_share) == (1 / 4, 1 / 4)
    assert (gpt.user_grade_counts, gpt.agent_grade_counts) == ({-1: 1, 1: 0, 2: 1, 5: 0}, {-1: 0, 1: 0, 2: 1, 5: 1})
    assert gpt.score == pytest.approx(expected_score([-1, 2], [5, 2], 3, 2, 1, abandoned=1), abs=1e-12)
    assert (gpt.ended_sessions, gpt.abandoned_sessions, gpt.abandon_rate) == (3, 1, 1 / 3)  # g3: no commit

    plan = rows[("plan", "anthropic/claude-opus-4-1", "python/fastapi")]
    assert (plan.sessions, plan.commits, plan.xp_per_session, plan.mean_user_grade) == (2, 0, 3.0, None)
    assert plan.score == pytest.approx(expected_score([], [], 2, 0, 0, abandoned=2), abs=1e-12)

    # Current agent sheet values come from the agents sub-database.
    with tracker.store.read() as view:
        build = view.get("agents", "build")
    assert (claude_shop.skill_points, claude_shop.communication_score) == (build["skillPoints"], build["communicationScore"])
    assert build["totalCommits"] == 4 + 2 + 3 and build["totalBugs"] == 1
    assert report.totals == {"sessions": 14, "subagentSessions": 0, "commits": 12, "grades": 23, "bugs": 1,
                             "setups": 5, "rankedSetups": 4}
    assert report.unattributed_bugs == 0
    # lastUsed is the last session update of the setup (session.deleted of c3).
    with tracker.store.read() as view:
        assert claude_shop.last_used == view.get("sessions", "c3")["updatedAt"]


def test_score_parts_bounds() -> None:
    best = [0.0] * SLOTS
    best[0], best[2] = 1, 1_000_000  # one session, a million commits, no grades, no bugs
    score, parts = score_parts(best)
    assert parts["reliability"] == 1.0 and parts["productivity"] < 1
    assert parts["completion"] == parts["toolSuccess"] == parts["cleanCommits"] == 1.0  # nothing went wrong
    worst = [0.0] * SLOTS
    worst[ENDED], worst[ABANDONED] = 3, 5  # more abandoned than ended (foreign data) is capped
    worst[TOOL_CALLS], worst[FAILED_CALLS], worst[FIXED_UP] = 4, 4, 2
    worst[0], worst[2], worst[9] = 1, 1, 5  # bugs beyond commits are capped
    worst[5], worst[6] = -1 * 1000, 1000  # a thousand bad user grades
    score, parts = score_parts(worst)
    assert parts["reliability"] == 0.0 and 0 <= score <= 100
    assert parts["completion"] == parts["toolSuccess"] == parts["cleanCommits"] == 0.0
    assert parts["userGrade"] == pytest.approx(((-1000 + 2) / 1002 + 1) / 6)


def _help_text(capsys: pytest.CaptureFixture[str]) -> str:
    from bridge.cli import main
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    return capsys.readouterr().out


def test_the_formula_in_help_is_the_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every signal at once; the score computed from the weights `report --help` prints (and
    docs/README-report.md repeats) and parts worked out by hand equals the report's."""
    shop, _ = make_projects(tmp_path)
    t = Tracker(tmp_path / "db.lmdb")
    t.send("session.created", {"sessionID": "s1", "directory": str(shop), "agent": {"id": "build", "provider": "p",
                                                                                     "model": "m"}})
    t.tool("s1")
    t.send("tool.executed", {"sessionID": "s1", "callID": "f1", "tool": "edit", "success": False})
    first = t.commit("s1")
    t.tool("s1", "bash", args={"command": "git commit --amend --no-edit"}, output="[main 0aaaaaa] feat: change\n")
    t.send("grade", {"sessionID": "s1", "grade": 5, "grader": "user"})
    t.send("grade", {"sessionID": "s1", "grade": 2, "grader": "agent"})
    t.commit("s1")
    t.tool("s1", "bash", args={"command": f"git revert --no-edit {first}"}, output="[main 0bbbbbb] Revert x\n")
    t.send("session.deleted", {"sessionID": "s1"})
    for sid in ("s2", "s3"):  # two sessions that end without a commit
        t.send("session.created", {"sessionID": sid, "directory": str(shop), "agent": {"id": "build", "provider": "p",
                                                                                        "model": "m"}})
        t.send("tool.executed", {"sessionID": sid, "callID": "f1", "tool": "bash", "success": False})
        t.send("session.deleted", {"sessionID": sid})
    t.flush()
    (row,) = build_report(t.store).setups
    # by hand: 3 sessions, all ended, 2 abandoned; commits first, its amend, a second, the revert: 4,
    # 1 fixed up (first), 1 reverted (first: a bug); tool calls 1 + 1 failed + 4 bash = 6 + 2 failed = 8,
    # 3 failed; one user grade 5, one agent grade 2
    assert (row.sessions, row.ended_sessions, row.abandoned_sessions) == (3, 3, 2)
    assert (row.commits, row.fixed_up, row.bugs, row.reverts) == (4, 1, 1, 1)
    assert (row.tool_calls, row.failed_tool_calls) == (8, 3)
    parts = {
        "userGrade": ((5 + 2) / 3 + 1) / 6, "agentGrade": ((2 + 2) / 3 + 1) / 6,
        "productivity": (4 / 3) / (4 / 3 + 1), "reliability": 1 - 1 / 4,
        "completion": 1 - 2 / 3, "toolSuccess": 1 - 3 / 8, "cleanCommits": 1 - 1 / 4,
    }
    text = _help_text(capsys)
    formula = " ".join(text[text.index("score = 100 x ("):].split(")")[0].split())
    weights = {name: float(weight) for weight, name in re.findall(r"(\d\.\d+) x (\w+)", formula)}
    assert set(weights) == set(parts) and sum(weights.values()) == pytest.approx(1.0)
    assert row.score == pytest.approx(100 * sum(weights[name] * parts[name] for name in parts), abs=1e-12)
    assert row.score == pytest.approx(expected_score([5], [2], 3, 4, 1, abandoned=2, calls=8, failed=3, fixed_up=1),
                                      abs=1e-12)
    # the docs say the same formula
    docs = " ".join((Path(__file__).parent.parent / "docs" / "README-report.md").read_text().split())
    assert formula + ")" in docs
    t.close()


# -- ranking ---------------------------------------------------------------------------------------------

def test_ranking_per_stack_and_minimum_sample(reference) -> None:
    tracker, *_ = reference
    report = build_report(tracker.store)
    assert report.min_sessions == DEFAULT_MIN_SESSIONS == 3
    order = [(row.rank, row.agent, row.model, row.stack) for row in report.setups]
    claude_shop = expected_score([5, 2, 1], [5, 2, 2, 5], 3, 4, 0)
    gpt = expected_score([-1, 2], [5, 2], 3, 2, 1, abandoned=1)
    claude_web = expected_score([5, 2, 2], [2, 2, 1], 3, 3, 0)
    qwen = expected_score([1, -1, 2], [2, 5, 2], 3, 3, 0)
    assert claude_shop > gpt and claude_web > qwen
    # python/fastapi first (8 sessions), then typescript/react (6); unranked last in their stack.
    assert order == [
        (1, "build", "anthropic/claude-sonnet-4-5", "python/fastapi"),
        (2, "build", "openai/gpt-5", "python/fastapi"),
        (None, "plan", "anthropic/claude-opus-4-1", "python/fastapi"),
        (1, "build", "anthropic/claude-sonnet-4-5", "typescript/react"),
        (2, "general", "ollama/qwen3-coder:30b", "typescript/react"),
    ]
    plan = report.setups[2]
    assert not plan.ranked and plan.note == "2 of 3 sessions needed to be ranked"
    overall = sorted((row.overall_rank, row.score) for row in report.setups if row.ranked)
    assert [rank for rank, _ in overall] == [1, 2, 3, 4]
    assert [score for _, score in overall] == sorted((claude_shop, gpt, claude_web, qwen), reverse=True)
    texts = [rec.text for rec in report.recommendations]
    assert texts[0].startswith("For python/fastapi projects, use agent build with anthropic/claude-sonnet-4-5: "
                               f"score {claude_shop:.1f} over 3 sessions (1.33 commits/session, mean user grade 2.67, "
                               f"mean agent grade 3.50, 0.00 bugs/commit); next: build with openai/gpt-5 at {gpt:.1f}.")
    assert texts[1].startswith("For typescript/react projects, use agent build with anthropic/claude-sonnet-4-5")
    assert [rec.stack for rec in report.recommendations] == ["python/fastapi", "typescript/react"]

    # A smaller minimum sample ranks the plan agent too (it has no commits: last).
    report = build_report(tracker.store, min_sessions=2)
    plan = rows_by_setup(report)[("plan", "anthropic/claude-opus-4-1", "python/fastapi")]
    assert plan.ranked and plan.rank == 3
    with pytest.raises(ReportError, match="at least 1"):
        build_report(tracker.store, min_sessions=0)


def test_not_enough_data_recommendation(tmp_path: Path) -> None:
    shop, _ = make_projects(tmp_path)
    t = Tracker(tmp_path / "db.lmdb")
    t.session("a", shop, "build", CLAUDE, commits=[(2, 2)])
    t.session("b", shop, "build", CLAUDE)
    t.flush()
    report = build_report(t.store)
    assert [rec.text for rec in report.recommendations] == [
        "For python/fastapi projects: not enough data yet (the most used setup, build with "
        "anthropic/claude-sonnet-4-5, has 2 of the 3 sessions needed)."]
    assert report.recommendations[0].to_wire()["setup"] is None
    t.close()


def test_ties_are_broken_by_sessions_then_recency_then_name(tmp_path: Path) -> None:
    shop, _ = make_projects(tmp_path)
    t = Tracker(tmp_path / "db.lmdb")
    # Neutral grades only: every mean is 1 whatever the count, so the scores are exactly equal.
    t.at("2026-10-01T10:00:00.000Z")
    for n in range(3):
        t.session(f"beta{n}", shop, "beta", CLAUDE, commits=[(1, 1)])
    t.at("2026-10-01T10:00:00.000Z")  # alpha's sessions at the very same instants as beta's
    for n in range(3):
        t.session(f"alpha{n}", shop, "alpha", CLAUDE, commits=[(1, 1)])
    t.flush()
    rows = build_report(t.store).setups
    assert rows[0].score == rows[1].score and rows[0].last_used == rows[1].last_used
    assert [(row.agent, row.rank) for row in rows] == [("alpha", 1), ("beta", 2)]  # by name

    t.at("2026-10-02T10:00:00.000Z")  # beta used more recently
    t.session("beta-late", shop, "beta", CLAUDE, commits=[(1, 1)])
    t.flush()
    rows = build_report(t.store).setups
    assert rows[0].score == rows[1].score
    assert [(row.agent, row.sessions) for row in rows] == [("beta", 4), ("alpha", 3)]  # more sessions first

    t.at("2026-10-03T10:00:00.000Z")
    t.session("alpha-late", shop, "alpha", CLAUDE, commits=[(1, 1)])
    t.flush()
    rows = build_report(t.store).setups
    assert (rows[0].sessions, rows[1].sessions) == (4, 4) and rows[0].score == rows[1].score
    assert [row.agent for row in rows] == ["alpha", "beta"]  # equal sizes: the most recent first
    t.close()


def test_incomplete_setups_are_shown_but_never_ranked(tmp_path: Path) -> None:
    shop, _ = make_projects(tmp_path)
    t = Tracker(tmp_path / "db.lmdb")
    for n in range(3):
        t.session(f"anon{n}", shop, None, None, commits=[(5, 5)])  # no agent information at all
        t.session(f"nomodel{n}", shop, "build", None, commits=[(5, 5)])
    t.flush()
    rows = rows_by_setup(build_report(t.store))
    assert set(rows) == {("unknown", "unknown-model", "python/fastapi"), ("build", "unknown-model", "python/fastapi")}
    for row in rows.values():
        assert (row.sessions, row.commits, row.ranked, row.note) == (3, 3, False, "agent or model unknown: not ranked")
    t.close()


# -- attribution corner cases --------------------------------------------------------------------------------

def corner_cases(tmp_path: Path) -> Tracker:
    shop, web = make_projects(tmp_path)
    t = Tracker(tmp_path / "corner.lmdb")
    t.session("plain", shop, "build", CLAUDE, commits=[(2, None)])
    # A session that switched model midway: counted for both setups, XP split evenly.
    t.send("session.created", {"sessionID": "switch", "directory": str(shop),
                               "agent": {"id": "build", "provider": "anthropic", "model": "claude-sonnet-4-5"}})
    t.tool("switch")
    t.commit("switch")
    t.send("session.updated", {"sessionID": "switch", "agent": {"id": "build", "provider": "openai", "model": "gpt-5"}})
    t.tool("switch")
    t.commit("switch")
    # A user grade given later, with the commit hash and no session: no model on the grade record.
    first = t.last_hash["plain"]
    t.send("grade", {"commitHash": first, "projectPath": str(shop), "grade": 5, "grader": "user"})
    # Bugs: one naming a commit, one naming only a session, one naming neither (unattributed).
    t.send("bug.reported", {"agentId": "build", "commitHash": t.last_hash["switch"], "projectPath": str(shop)})
    t.send("bug.reported", {"sessionID": "plain", "description": "found later"})
    t.send("bug.reported", {"agentId": "build", "description": "somewhere"})
    t.send("agent.reinstate", {"agentId": "build"})
    # A session with no agent information (no agentId/model/provider/setups fields at all).
    t.send("session.created", {"sessionID": "bare", "directory": str(web)})
    t.tool("bare")
    # Other activities are not bugs.
    t.send("activity.logged", {"kind": "test-run", "agentId": "build", "description": "the bug tracker says ok"})
    t.flush()
    return t


def test_attribution_corner_cases(tmp_path: Path) -> None:
    t = corner_cases(tmp_path)
    report = build_report(t.store)
    rows = rows_by_setup(report)
    claude = rows[("build", "anthropic/claude-sonnet-4-5", "python/fastapi")]
    gpt = rows[("build", "openai/gpt-5", "python/fastapi")]
    bare = rows[("unknown", "unknown-model", "typescript/react")]
    assert (claude.sessions, claude.commits, claude.bugs) == (2, 2, 1)  # plain + switch; plain's session bug
    assert (gpt.sessions, gpt.commits, gpt.bugs) == (1, 1, 1)  # switch; the bug naming its commit
    # "plain": 1 tool + commit 6 = 7 XP; "switch": 2 tools + 2 commits = 14 XP, split between its 2 setups.
    assert claude.xp == 7 + 7 and gpt.xp == 7
    # plain's commit: agent 2, and the later user grade (5) that found its model through the commit.
    assert (claude.agent_grades, claude.user_grades, claude.user_grade_sum) == (1, 1, 5)
    assert (bare.sessions, bare.xp) == (1, 1)
    assert report.unattributed_bugs == 1
    assert report.totals["bugs"] == 2 and report.totals["grades"] == 2
    t.close()


@pytest.mark.parametrize("decoder", ["orjson", "msgspec"])
def test_fast_path_equals_the_record_by_record_path(tmp_path: Path, decoder: str) -> None:
    if decoder == "msgspec":
        pytest.importorskip("msgspec")
    t = corner_cases(tmp_path)
    reference, _, _ = populate(tmp_path / "ref")
    for store in (t.store, reference.store):
        for options in ({}, {"since": "2026-10-01T09:00:30Z"}, {"stack": "python"}):
            fast = build_report(store, decoder=decoder, **options)
            slow = build_report(store, _force_slow=True, decoder=decoder, **options)
            assert [row.to_wire() for row in fast.setups] == [row.to_wire() for row in slow.setups]
            assert fast.totals == slow.totals and fast.unattributed_bugs == slow.unattributed_bugs
            assert fast.decoder == decoder
    t.close()
    reference.close()


# -- filters ----------------------------------------------------------------------------------------------

def test_filters(reference, monkeypatch: pytest.MonkeyPatch) -> None:
    tracker, shop, web = reference
    def setups(**options: Any) -> set[tuple[str, str, str]]:
        return set(rows_by_setup(build_report(tracker.store, **options)))

    everything = setups()
    assert len(everything) == 5
    assert setups(project=str(shop)) == {s for s in everything if s[2] == "python/fastapi"}
    assert setups(project=str(shop) + "/") == setups(project=str(shop))
    monkeypatch.chdir(web)
    assert setups(project=".") == {s for s in everything if s[2] == "typescript/react"}
    assert setups(stack="typescript") == setups(stack="TypeScript/React") == setups(project=str(web))
    assert setups(stack="python/django") == set()
    assert setups(stack="pyth") == set()
    assert setups(project=str(shop), stack="typescript") == set()
    report = build_report(tracker.store, project=str(shop), stack="python")
    assert report.filters == {"project": str(shop), "stack": "python", "since": None, "until": None,
                              "agent": None, "model": None}
    assert report.totals["sessions"] == 8


def test_since_counts_only_records_on_or_after_the_date(tmp_path: Path) -> None:
    shop, _ = make_projects(tmp_path)
    t = Tracker(tmp_path / "db.lmdb")
    t.at("2026-09-01T12:00:00.000Z")
    t.session("old", shop, "build", CLAUDE, commits=[(5, 5)])
    t.at("2026-10-15T12:00:00.000Z")
    t.session("new", shop, "build", CLAUDE, commits=[(2, -1)], bug=True)
    t.flush()
    (row,) = build_report(t.store, since="2026-10-01").setups
    assert (row.sessions, row.commits, row.agent_grade_sum, row.user_grade_sum, row.bugs) == (1, 1, 2, -1, 1)
    (row,) = build_report(t.store).setups
    assert (row.sessions, row.commits, row.agent_grade_sum, row.user_grade_sum, row.bugs) == (2, 2, 7, 4, 1)
    assert build_report(t.store, since="2026-10-16").setups == []
    # The day itself is included; an ISO timestamp cuts within the day.
    assert build_report(t.store, since="2026-10-15").totals["sessions"] == 1
    assert build_report(t.store, since="2026-10-15T12:00:00.500Z").totals["sessions"] == 0
    t.close()


def test_since_forms() -> None:
    now = datetime(2026, 11, 26, 5, 0, tzinfo=timezone.utc)
    assert normalise_since("2026-10-01") == "2026-10-01"
    assert normalise_since("30d", now) == "2026-10-27"
    assert normalise_since("2026-10-01T12:00:00+02:00") == "2026-10-01T10:00:00.000Z"
    assert normalise_since(None) is None
    for bad in ("yesterday", "2026-13-01", "01/10/2026", "-3d"):
        with pytest.raises(ReportError, match="--since"):
            normalise_since(bad)


def test_stack_matches() -> None:
    assert stack_matches("python/fastapi", "python") and stack_matches("python", "python")
    assert stack_matches("python/fastapi", "Python/FastAPI") and not stack_matches("python/flask", "python/fastapi")
    assert not stack_matches("pythonic", "python") and stack_matches("anything", None)


# -- output ---------------------------------------------------------------------------------------------------

def test_wire_and_text(reference) -> None:
    tracker, *_ = reference
    report = build_report(tracker.store)
    wire = json.loads(json.dumps(report.to_wire()))
    assert wire["scoring"]["weights"] == {"userGrade": 0.35, "agentGrade": 0.10, "productivity": 0.20,
                                          "reliability": 0.15, "completion": 0.10, "toolSuccess": 0.05,
                                          "cleanCommits": 0.05}
    assert wire["scoring"]["minSessions"] == 3 and wire["scoring"]["rankedWithin"] == "stack"
    assert "score = 100 x" in wire["scoring"]["formula"]
    first = wire["setups"][0]
    assert {k: first[k] for k in ("agent", "model", "stack", "setup", "sessions", "commits", "rank", "overallRank")} == {
        "agent": "build", "model": "anthropic/claude-sonnet-4-5", "stack": "python/fastapi",
        "setup": "build|anthropic/claude-sonnet-4-5", "sessions": 3, "commits": 4, "rank": 1, "overallRank": 1}
    assert set(wire["recommendations"][0]) == {"stack", "text", "agent", "model", "setup", "score", "sessions",
                                                 "costPerCommit", "cheapest"}
    text = render_text(report)
    lines = text.splitlines()
    assert any(line.split()[:4] == ["1", "python/fastapi", "build", "anthropic/claude-sonnet-4-5"] for line in lines)
    assert any(line.split()[:3] == ["-", "python/fastapi", "plan"] for line in lines)
    assert "For python/fastapi projects, use agent build with anthropic/claude-sonnet-4-5" in text.replace("\n", " ")


def test_empty_database_reports_nothing(tmp_path: Path) -> None:
    t = Tracker(tmp_path / "empty.lmdb")
    report = build_report(t.store)
    assert report.setups == [] and report.recommendations == []
    assert render_text(report) == ("No sessions recorded yet: nothing to report. Use OpenCode with the plugin "
                                   "(agent-tracker install-plugin), or try agent-tracker demo.\n")
    t.close()


# -- timeline and chart ------------------------------------------------------------------------------------------

def test_timeline_is_cumulative(tmp_path: Path) -> None:
    shop, _ = make_projects(tmp_path)
    t = Tracker(tmp_path / "db.lmdb")
    for day, grades in ((1, (5, 5)), (2, (-1, -1)), (3, (2, 2))):
        t.at(f"2026-10-0{day}T12:00:00.000Z")
        t.session(f"s{day}", shop, "build", CLAUDE, commits=[grades])
    t.flush()
    timeline = build_timeline(t.store)
    assert timeline.granularity == "day"
    (points,) = timeline.series.values()
    assert [stamp for stamp, _ in points] == ["2026-10-01", "2026-10-02", "2026-10-03"]
    assert [score for _, score in points] == pytest.approx([
        expected_score([5], [5], 1, 1, 0), expected_score([5, -1], [5, -1], 2, 2, 0),
        expected_score([5, -1, 2], [5, -1, 2], 3, 3, 0)])
    assert points[-1][1] == pytest.approx(build_report(t.store).setups[0].score)
    t.close()


def test_chart_png_and_html(reference, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from bridge.report.chart import ChartError, draw_chart
    from bridge.report.html import save_chart

    tracker, *_ = reference
    report = build_report(tracker.store)
    png = save_chart(tracker.store, report, tmp_path / "out" / "chart.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    page = save_chart(tracker.store, report, tmp_path / "chart.html").read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "</html>" in page
    assert "build · anthropic/claude-sonnet-4-5 · python/fastapi" in page
    assert "For python/fastapi projects, use agent build" in page
    with pytest.raises(ChartError, match=".png or .html"):
        save_chart(tracker.store, report, tmp_path / "chart.jpg")
    with pytest.raises(ChartError, match="draw_chart writes PNG files"):
        draw_chart(tracker.store, report, tmp_path / "chart.html")


# -- the bridge's `report` method (real subprocess) -------------------------------------------------------------

async def test_report_method_of_the_real_bridge(isolated_home: Path, tmp_path: Path) -> None:
    shop, _ = make_projects(tmp_path)
    bridge = await start_bridge(isolated_home)
    try:
        await bridge.initialize(shop)
        calls = 0
        for number in range(3):
            sid = f"s{number}"
            bridge.notify("session.created", {"sessionID": sid, "directory": str(shop),
                                              "agent": {"id": "build", "provider": "openai", "model": "gpt-5"}})
            calls += 1
            bridge.notify("tool.executed", {
                "sessionID": sid, "callID": f"c{calls}", "tool": "bash", "success": True,
                "args": {"command": "git commit -m 'feat: x'"},
                "output": f"[main abc{number:04d}] feat: x\n 1 file changed\n"})
            await bridge.request("grade", {"sessionID": sid, "grade": 2, "grader": "user"})
        result = await bridge.request("report", {"stack": "python"})
        (setup,) = result["setups"]
        assert {k: setup[k] for k in ("agent", "model", "stack", "sessions", "commits", "userGrades",
                                      "meanUserGrade", "rank", "xpPerSession")} == {
            "agent": "build", "model": "openai/gpt-5", "stack": "python/fastapi", "sessions": 3, "commits": 3,
            "userGrades": 3, "meanUserGrade": 2.0, "rank": 1, "xpPerSession": 6.0}
        assert result["recommendations"][0]["setup"] == "build|openai/gpt-5"
        assert "python/fastapi" in result["text"] and "openai/gpt-5" in result["text"]

        # the filters of `agent-tracker report`, on the wire too
        bridge.notify("session.created", {"sessionID": "p1", "directory": str(shop),
                                          "agent": {"id": "plan", "provider": "anthropic", "model": "claude-opus-4-1"}})

        def found(result: dict) -> list[tuple[str, str, int]]:
            return [(s["agent"], s["model"], s["sessions"]) for s in result["setups"]]
        assert found(await bridge.request("report", {"agent": "plan"})) == [("plan", "anthropic/claude-opus-4-1", 1)]
        assert found(await bridge.request("report", {"model": "gpt-5", "minSessions": 1})) == [
            ("build", "openai/gpt-5", 3)]
        assert found(await bridge.request("report", {"model": "anthropic"})) == [
            ("plan", "anthropic/claude-opus-4-1", 1)]
        old = await bridge.request("report", {"until": "2000-01-01"})
        assert found(old) == [] and old["filters"]["until"] == "2000-01-01"
        with pytest.raises(RpcError) as refused:
            await bridge.request("report", {"until": "yesterday"})
        assert refused.value.code == -32602 and "until must be a date" in refused.value.message
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()


def test_migrated_history_goes_through_the_careful_path(tmp_path: Path) -> None:
    """Records imported from the old plugin lack fields (no model, provider, sessionID; projects
    without a stack): the fast path hands them over one by one and must agree with the slow one."""
    from bridge.migration import importer as migration
    fixture = Path(__file__).parent / "fixtures" / "lmdbjs" / "flat.mdb"
    if not fixture.exists():
        pytest.skip("no lmdb-js fixture")
    source = tmp_path / "old.mdb"
    source.write_bytes(fixture.read_bytes())
    tracker, _, _ = populate(tmp_path)
    result = migration.migrate_paths(tracker.store, [source])
    assert result.imported > 0 and not result.errors
    decoders = ["orjson"] + (["msgspec"] if _has_msgspec() else [])
    for options in ({}, {"since": "2024-05-01T09:30:00Z"}, {"stack": "unknown"}):
        slow = build_report(tracker.store, _force_slow=True, **options)
        for decoder in decoders:
            fast = build_report(tracker.store, decoder=decoder, **options)
            assert [row.to_wire() for row in fast.setups] == [row.to_wire() for row in slow.setups]
            assert fast.totals == slow.totals
    everything = build_report(tracker.store)
    migrated = [row for row in everything.setups if row.stack == "unknown"]
    assert sum(row.commits for row in migrated) == result.sources[0].imported["commits"]
    # no sessions came with them: shown under the agent record's model, never ranked
    assert all(row.sessions == 0 and not row.ranked and row.imported["commits"] == row.commits for row in migrated)
    assert {row.model for row in migrated} == {"anthropic/claude-sonnet-4-5", "openai/gpt-5", "unknown-model",
                                               "claude-3-5-sonnet-20241022", "google/gemini-2.5-pro"}
    tracker.close()


def _has_msgspec() -> bool:
    try:
        import msgspec  # noqa: F401
    except ImportError:
        return False
    return True


# -- the helper process (the CLI counts grades and bugs in a forked child) -----------------------------------

def test_helper_process_gives_the_same_report(reference, isolated_home: Path) -> None:
    import subprocess
    import sys

    from support import bridges

    tracker, *_ = reference
    sequential = build_report(tracker.store, scan=True)  # the helper helps only the scan
    assert not sequential.parallel
    script = ("import json, sys; from bridge.config import BridgeConfig; "
              "from bridge.store import Store; from bridge.report.build import build_report; import bridge.report.helper as H; "
              "H.HELPER_THRESHOLD = 0; store = Store.open(BridgeConfig(database_path=sys.argv[1]), readonly=True); "
              "report = build_report(store, parallel=True, scan=True); "
              "print(json.dumps({'parallel': report.parallel, 'setups': [r.to_wire() for r in report.setups], "
              "'totals': report.totals, 'unattributed': report.unattributed_bugs})); "
              "import os; print(json.dumps({'pid': os.getpid(), 'readers': store._env.readers()}))")
    result = subprocess.run([sys.executable, "-c", script, str(tracker.store.path)], capture_output=True, text=True,
                            env=bridges.bridge_env(isolated_home), cwd=str(bridges.ROOT), timeout=60)
    assert result.returncode == 0, result.stderr
    first, readers = result.stdout.splitlines()
    forked = json.loads(first)
    assert forked["parallel"] is True
    assert forked["setups"] == json.loads(json.dumps([r.to_wire() for r in sequential.setups]))
    assert forked["totals"] == sequential.totals
    # The child closed its environment: every reader slot left belongs to the parent process.
    table = json.loads(readers)
    pids = {int(line.split()[0]) for line in table["readers"].splitlines()[1:] if line.strip()}
    assert pids <= {table["pid"]}


@pytest.mark.parametrize("payload", ["missing", "other-snapshot"])
def test_helper_results_are_used_only_for_the_same_snapshot(reference, monkeypatch: pytest.MonkeyPatch,
                                                            payload: str) -> None:
    """A failed child, or one that read another snapshot: the parent counts grades and bugs itself."""
    from bridge.report import helper as helper_module

    tracker, *_ = reference
    expected = [row.to_wire() for row in build_report(tracker.store).setups]

    class FakeHelper:
        def result(self) -> dict[str, Any] | None:
            if payload == "missing":
                return None
            return {"txn": -1, "acc": {("build", "x/y", "python"): [0.0] * 10}, "grades": 99, "bugs": 99,
                    "unattributed": 99, "paths": {}}

        def cancel(self) -> None:
            pass

    monkeypatch.setattr(helper_module.Helper, "start", classmethod(lambda cls, *args: FakeHelper()))
    report = build_report(tracker.store, parallel=True)
    assert not report.parallel
    assert [row.to_wire() for row in report.setups] == expected
