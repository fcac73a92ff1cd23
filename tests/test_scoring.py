"""Issue 3: the scoring rules, with exact numbers — as pure functions and through the real service.

Defaults: tool +1 XP, command +2, commit +5 (totalCommits +1), push +10; level-up pays
1000 x SP while SP >= 1 and XP >= 1000 x SP; new agent SP 1 / XP 0 / CS 60; CS moves by each grade,
clamped to [0, 100 x SP] one grade at a time; a bug costs 1 SP, SP <= 0 halts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from support.tracking import (
    GRADES_TEXT,
    ServiceHarness,
    close_harness,
    make_harness,
    new_agent_status,
    open_store,
    tool,
)

from bridge.config import ScoringRules
from bridge.protocol.grades import InvalidGrade, parse_grade
from bridge.protocol.structure import InvalidParams
from bridge.tracking.scoring import (
    AgentState,
    apply_grade,
    earn,
    level_up,
    reinstate,
    report_bug,
)

RULES = ScoringRules()
HASHES = [f"{i:02d}" + "a1b2c3d4e5" * 3 + "abcdef12" for i in range(40)]  # 40 hex digits each


@pytest.fixture
def make(tmp_path: Path, project: Path):
    """A real service on a real LMDB store, with optional rule overrides."""
    made: list[ServiceHarness] = []

    def factory(rules: ScoringRules | None = None) -> ServiceHarness:
        harness = make_harness(open_store(tmp_path / f"db{len(made)}.lmdb"), rules, directory=str(project))
        harness.send("session.created", {"sessionID": "s1", "directory": str(project),
                                         "agent": {"id": "build", "model": "m1", "provider": "p1"}})
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        close_harness(harness)


@pytest.fixture
def h(make) -> ServiceHarness:
    return make()


def commit(h: ServiceHarness, project: Path, index: int) -> str:
    h.send("commit.completed", {"sessionID": "s1", "projectPath": str(project), "commitHash": HASHES[index]})
    return HASHES[index]


def grade(h: ServiceHarness, project: Path, commit_hash: str, value: Any, grader: str = "agent") -> dict:
    return h.send("grade", {"sessionID": "s1", "projectPath": str(project), "commitHash": commit_hash,
                            "grade": value, "grader": grader})


def flushed_agent(h: ServiceHarness, agent: str = "build") -> dict[str, Any]:
    result = h.service.flush()
    assert (result.errors, result.transactions) == ([], 1)
    record = h.stored("agents", agent)
    assert record is not None
    return {k: record[k] for k in ("skillPoints", "experiencePoints", "communicationScore", "totalCommits",
                                   "totalBugs", "totalPushes", "halted")}


# -- pure functions ------------------------------------------------------------------------------


@pytest.mark.parametrize(("xp", "levels", "sp", "left"), [
    (999, 0, 1.0, 999.0),
    (1000, 1, 2.0, 0.0),
    (2999, 1, 2.0, 1999.0),
    (3000, 2, 3.0, 0.0),
    (3500, 2, 3.0, 500.0),     # 1000 -> SP 2 (2500 left), 2000 -> SP 3 (500 left)
    (5999, 2, 3.0, 2999.0),
    (6000, 3, 4.0, 0.0),
    (8000, 3, 4.0, 2000.0),
    (10000, 4, 5.0, 0.0),
])
def test_level_up_pays_1000_times_sp_and_keeps_the_remainder(xp: float, levels: int, sp: float,
                                                             left: float) -> None:
    state = AgentState.new("a", RULES)
    assert earn(state, xp, RULES) == levels
    assert (state.skill_points, state.experience_points) == (sp, left)


def test_level_up_is_the_same_in_one_gain_or_many() -> None:
    lump, steps = AgentState.new("a", RULES), AgentState.new("b", RULES)
    earn(lump, 7321, RULES)
    gained = sum(earn(steps, 1, RULES) for _ in range(7321))
    assert gained == 3
    assert (lump.skill_points, lump.experience_points) == (steps.skill_points, steps.experience_points) == (4.0, 1321.0)


def test_no_level_up_below_one_sp_and_no_gain_when_halted() -> None:
    state = AgentState("a", 0.5, 5000.0, 0.0)
    assert level_up(state, RULES) == 0
    assert (state.skill_points, state.experience_points) == (0.5, 5000.0)
    halted = AgentState("h", 0.0, 10.0, 0.0)
    assert earn(halted, 5000, RULES) == 0
    assert (halted.skill_points, halted.experience_points) == (0.0, 10.0)


def _level_up_loop(sp: float, xp: float, cost: float) -> tuple[int, float, float]:
    """The rule as README words it, one level at a time: the reference for the closed form."""
    levels = 0
    while sp >= 1 and xp >= cost * sp:
        xp -= cost * sp
        sp += 1
        levels += 1
    return levels, sp, xp


# "Normal values": what the loop computes exactly, integers and multiples of 1/8 (dyadic, like the
# defaults), from a halted agent to SP 40, gains up to 1.25 million XP (~50 levels at cost 1000).
EIGHTHS = st.integers(0, 10_000_000).map(lambda n: n / 8)


@settings(max_examples=2_000, deadline=None, derandomize=True)
@given(sp=st.one_of(st.integers(-2, 40).map(float), st.integers(0, 320).map(lambda n: n / 8)),
       xp=st.one_of(st.integers(0, 1_250_000).map(float), EIGHTHS),
       cost=st.one_of(st.integers(1, 5_000).map(float), st.integers(8, 40_000).map(lambda n: n / 8)))
def test_closed_form_level_up_equals_the_loop(sp: float, xp: float, cost: float) -> None:
    state = AgentState("a", sp, xp, 60.0)
    levels = level_up(state, ScoringRules(level_cost=cost))
    assert (levels, state.skill_points, state.experience_points) == _level_up_loop(sp, xp, cost)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(sp=st.integers(1, 10**6).map(float), xp=st.integers(0, 10**15).map(float),
       cost=st.integers(1, 10**9).map(float))
def test_closed_form_level_up_is_exact_where_the_loop_is_too_slow(sp: float, xp: float, cost: float) -> None:
    """Up to 10^15 XP (a billion events at the 10^6 ceiling): n levels are the most XP can pay for."""
    state = AgentState("a", sp, xp, 60.0)
    n = level_up(state, ScoringRules(level_cost=cost))
    assert state.skill_points == sp + n
    assert state.experience_points == xp - cost * (n * sp + n * (n - 1) // 2)   # all exact integers here
    assert 0 <= state.experience_points < cost * state.skill_points             # one more level is unaffordable


@settings(max_examples=300, deadline=None, derandomize=True)
@given(sp=st.integers(1, 1000), levels=st.one_of(st.integers(0, 100), st.integers(10**6, 10**8)),
       cost=st.integers(1, 4), offset=st.integers(-1, 0))
def test_closed_form_level_up_at_the_exact_boundaries(sp: int, levels: int, cost: int, offset: int) -> None:
    """XP exactly what n levels cost (or one less): a float square root alone is off by one in ~1 of 8
    such cases with n in the millions; the exact correction must get every one right."""
    price = cost * (levels * sp + levels * (levels - 1) // 2)
    assume(0 <= price + offset < 2**53)  # an exact float
    state = AgentState("a", float(sp), float(price + offset), 60.0)
    expected = levels if offset == 0 else levels - 1
    assert level_up(state, ScoringRules(level_cost=float(cost))) == expected
    assert state.skill_points == sp + expected


def test_the_largest_gain_the_rules_accept_levels_up_at_once() -> None:
    """pushXp at its ceiling (10^6) with levelCost at its floor (1): 1413 levels from one push, since
    1 + 2 + ... + 1413 = 998,991 <= 10^6 < 1 + ... + 1414 = 1,000,405."""
    rules = ScoringRules(push_xp=1e6, level_cost=1.0)
    state = AgentState.new("a", rules)
    assert earn(state, rules.push_xp, rules) == 1413
    assert (state.skill_points, state.experience_points) == (1414.0, 1009.0)
    # 10^30 XP (what pushXp 1e30 gave before the ceiling) is a handful of exact steps, not a loop.
    huge = AgentState("h", 1.0, 1e30, 60.0)
    assert level_up(huge, ScoringRules(level_cost=1.0)) == 1414213562373094
    assert huge.skill_points == 1414213562373095.0 and 0 <= huge.experience_points < huge.skill_points


def test_new_agent_defaults() -> None:
    state = AgentState.new("build", RULES)
    assert (state.skill_points, state.experience_points, state.communication_score) == (1.0, 0.0, 60.0)
    assert (state.total_commits, state.total_bugs, state.total_pushes, state.halted) == (0, 0, 0, False)


def test_grades_clamp_one_by_one() -> None:
    state = AgentState("a", 1.0, 0.0, 1.0)
    seen = []
    for value in (-1, -1, 5):
        apply_grade(state, value, RULES)
        seen.append(state.communication_score)
    assert seen == [0.0, 0.0, 5.0]  # not max(0, 1 - 1 - 1 + 5) = 4
    top = AgentState("b", 1.0, 0.0, 98.0)
    seen = []
    for value in (5, -1, 2):
        apply_grade(top, value, RULES)
        seen.append(top.communication_score)
    assert seen == [100.0, 99.0, 100.0]


def test_bug_and_reinstate_pure() -> None:
    state = AgentState("a", 2.0, 10.0, 150.0)
    report_bug(state, RULES)
    assert (state.skill_points, state.total_bugs, state.communication_score, state.halted) == (1.0, 1, 100.0, False)
    report_bug(state, RULES)
    assert (state.skill_points, state.total_bugs, state.halted) == (0.0, 2, True)
    report_bug(state, RULES)
    assert (state.skill_points, state.total_bugs, state.halted) == (-1.0, 3, True)
    reinstate(state, RULES)
    assert (state.skill_points, state.halted, state.experience_points) == (1.0, False, 10.0)
    strong = AgentState("b", 3.0, 0.0, 60.0)
    reinstate(strong, RULES)
    assert strong.skill_points == 3.0


@pytest.mark.parametrize(("value", "expected"), [
    (-1, -1), ("bad", -1), (1, 1), ("neutral", 1), (2, 2), ("good", 2), (5, 5), ("excellence", 5),
    (2.0, 2),  # JSON has one number type: 2.0 is the number 2
])
def test_valid_grades(value: Any, expected: int) -> None:
    assert parse_grade(value) == expected


@pytest.mark.parametrize("value", [3, "2", 2.5, None, math.nan, True, False, 0, -2, 4, 10, "Good", "excellent",
                                   math.inf, -math.inf, [2], {"grade": 2}])
def test_invalid_grades_pure(value: Any) -> None:
    with pytest.raises(InvalidGrade) as caught:
        parse_grade(value)
    assert GRADES_TEXT in str(caught.value)


# -- through the service ---------------------------------------------------------------------------


def test_unknown_agent_reads_as_a_new_agent(h: ServiceHarness) -> None:
    assert h.status("nobody-yet") == new_agent_status("nobody-yet")
    assert h.stored("agents", "nobody-yet") is None


@pytest.mark.parametrize(("method", "params", "changes", "session_counts"), [
    ("tool.executed", tool("s1", "c1"), {"experiencePoints": 1.0}, {"toolCalls": 1, "xpEarned": 1.0}),
    ("tool.executed", tool("s1", "c1", success=False), {}, {"failedToolCalls": 1}),
    ("command.executed", {"sessionID": "s1", "command": "test"}, {"experiencePoints": 2.0},
     {"commands": 1, "xpEarned": 2.0}),
    ("command.executed", {"sessionID": "s1", "command": "test", "success": False}, {}, {}),
    ("commit.completed", {"sessionID": "s1", "commitHash": HASHES[0]},
     {"experiencePoints": 5.0, "totalCommits": 1}, {"commits": 1, "xpEarned": 5.0}),
    ("commit.pushed", {"sessionID": "s1", "head": HASHES[0]},
     {"experiencePoints": 10.0, "totalPushes": 1}, {"pushes": 1, "xpEarned": 10.0}),
])
def test_each_event_earns_its_xp(h: ServiceHarness, method: str, params: dict, changes: dict,
                                 session_counts: dict) -> None:
    h.send(method, params)
    pending = 1 if changes else 0
    assert h.status("build") == new_agent_status("build", pendingChanges=pending, **changes)
    assert h.service.flush().errors == []
    if changes:
        assert h.stored("agents", "build")["experiencePoints"] == changes["experiencePoints"]
    assert h.status("build") == new_agent_status("build", **changes)
    session = h.stored("sessions", "s1")
    counters = {k: session[k] for k in ("toolCalls", "failedToolCalls", "commands", "commits", "pushes", "xpEarned")
                if k in session}
    assert counters == session_counts


def test_a_mixed_session_adds_up_exactly(h: ServiceHarness, project: Path) -> None:
    for call in range(3):
        h.send("tool.executed", tool("s1", f"c{call}"))
    h.send("tool.executed", tool("s1", "fail", success=False))
    h.send("command.executed", {"sessionID": "s1", "command": "build"})
    h.send("command.executed", {"sessionID": "s1", "command": "test"})
    commit(h, project, 0)
    h.send("commit.pushed", {"sessionID": "s1", "projectPath": str(project), "head": HASHES[0]})
    assert h.status("build") == new_agent_status("build", experiencePoints=22.0, totalCommits=1, totalPushes=1,
                                                 pendingChanges=7)
    assert flushed_agent(h) == {"skillPoints": 1.0, "experiencePoints": 22.0, "communicationScore": 60.0,
                                "totalCommits": 1, "totalBugs": 0, "totalPushes": 1, "halted": False}
    session = h.stored("sessions", "s1")
    assert {k: session[k] for k in ("toolCalls", "failedToolCalls", "commands", "commits", "pushes", "xpEarned")} \
        == {"toolCalls": 3, "failedToolCalls": 1, "commands": 2, "commits": 1, "pushes": 1, "xpEarned": 22.0}


def test_level_up_with_remainder_across_several_levels(h: ServiceHarness) -> None:
    for call in range(3500):
        h.send("tool.executed", tool("s1", f"c{call}"))
    assert h.status("build") == new_agent_status("build", skillPoints=3.0, experiencePoints=500.0,
                                                 pendingChanges=3500)
    assert h.of("toast") == [{"message": "build levelled up to SP 2", "variant": "success"},
                             {"message": "build levelled up to SP 3", "variant": "success"}]
    assert flushed_agent(h) == {"skillPoints": 3.0, "experiencePoints": 500.0, "communicationScore": 60.0,
                                "totalCommits": 0, "totalBugs": 0, "totalPushes": 0, "halted": False}
    # The next level costs 3000: 2499 more XP is not enough, one more is.
    for call in range(2499):
        h.send("tool.executed", tool("s1", f"d{call}"))
    assert (h.status("build")["skillPoints"], h.status("build")["experiencePoints"]) == (3.0, 2999.0)
    h.send("tool.executed", tool("s1", "last"))
    assert (h.status("build")["skillPoints"], h.status("build")["experiencePoints"]) == (4.0, 0.0)
    assert flushed_agent(h)["skillPoints"] == 4.0


def test_level_up_reached_by_a_commit(h: ServiceHarness, project: Path) -> None:
    for call in range(995):
        h.send("tool.executed", tool("s1", f"c{call}"))
    assert h.service.flush().errors == []
    commit(h, project, 0)  # 995 + 5 = 1000 exactly
    assert h.status("build") == new_agent_status("build", skillPoints=2.0, experiencePoints=0.0, totalCommits=1,
                                                 pendingChanges=1)
    assert flushed_agent(h)["skillPoints"] == 2.0


def test_communication_floor_applied_grade_by_grade(make, project: Path) -> None:
    h = make(ScoringRules(initial_communication_score=1.0))
    scores = [grade(h, project, commit(h, project, i), value)["communicationScore"]
              for i, value in enumerate((-1, -1, 5))]
    assert scores == [0.0, 0.0, 5.0]
    assert h.status("build")["communicationScore"] == 5.0
    assert flushed_agent(h)["communicationScore"] == 5.0
    assert h.count("communication") == 3


def test_communication_cap_is_100_times_sp(make, project: Path) -> None:
    h = make()
    scores = []
    for i in range(5):
        commit_hash = commit(h, project, i)
        scores.append(grade(h, project, commit_hash, "excellence", "agent")["communicationScore"])
        scores.append(grade(h, project, commit_hash, 5, "user")["communicationScore"])
    assert scores == [65.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0, 100.0, 100.0, 100.0]
    commit_hash = commit(h, project, 5)
    assert grade(h, project, commit_hash, "bad")["communicationScore"] == 99.0
    assert flushed_agent(h)["communicationScore"] == 99.0

    two = make(ScoringRules(initial_skill_points=2.0, initial_communication_score=195.0))
    assert [grade(two, project, commit(two, project, i), 5)["communicationScore"] for i in range(2)] == [200.0, 200.0]
    assert flushed_agent(two)["communicationScore"] == 200.0


def test_a_bug_costs_one_sp_and_recaps_the_communication_score(make) -> None:
    h = make(ScoringRules(initial_skill_points=2.0, initial_communication_score=150.0))
    result = h.send("bug.reported", {"sessionID": "s1", "description": "broke the build"})
    assert result == new_agent_status("build", skillPoints=1.0, communicationScore=100.0, totalBugs=1,
                                      pendingChanges=1)
    assert flushed_agent(h) == {"skillPoints": 1.0, "experiencePoints": 0.0, "communicationScore": 100.0,
                                "totalCommits": 0, "totalBugs": 1, "totalPushes": 0, "halted": False}
    activities = h.all("activities")
    assert [(record["kind"], record["description"], record["agentId"]) for _, record in activities] \
        == [("bug", "broke the build", "build")]


def test_halted_agent_earns_nothing_until_reinstated(h: ServiceHarness, project: Path) -> None:
    for call in range(500):
        h.send("tool.executed", tool("s1", f"c{call}"))
    h.send("bug.reported", {"agentId": "build", "description": "deleted prod"})
    assert h.status("build") == new_agent_status(
        "build", skillPoints=0.0, experiencePoints=500.0, totalBugs=1, communicationScore=0.0, halted=True,
        pendingChanges=501, haltReason="skill points 0 after 1 bug; the latest: a bug was reported: deleted prod")
    # Nothing earns XP while halted; the commit and the push themselves are still recorded.
    assert h.send("tool.executed", tool("s1", "halted-1")) == {"counted": True, "xp": 0.0}
    h.send("command.executed", {"sessionID": "s1", "command": "test"})
    commit(h, project, 0)
    h.send("commit.pushed", {"sessionID": "s1", "projectPath": str(project), "head": HASHES[0]})
    halted = {"skillPoints": 0.0, "experiencePoints": 500.0, "communicationScore": 0.0, "totalCommits": 1,
              "totalBugs": 1, "totalPushes": 1, "halted": True}
    assert flushed_agent(h) == halted
    assert h.stored("sessions", "s1")["xpEarned"] == 500.0
    h.send("tool.executed", tool("s1", "halted-2"))
    assert flushed_agent(h) == halted

    assert h.send("agent.reinstate", {"agentId": "build", "reason": "fixed"})["skillPoints"] == 1.0
    assert h.send("tool.executed", tool("s1", "back")) == {"counted": True, "xp": 1.0}
    assert flushed_agent(h) == {**halted, "skillPoints": 1.0, "experiencePoints": 501.0, "halted": False}
    assert h.stored("sessions", "s1")["xpEarned"] == 501.0
    assert [record["kind"] for _, record in h.all("activities")] == ["bug", "reinstate"]


def test_bugs_below_zero_and_reinstate_back_to_one(h: ServiceHarness) -> None:
    for _ in range(3):
        h.send("bug.reported", {"agentId": "build"})
    assert (h.status("build")["skillPoints"], h.status("build")["totalBugs"]) == (-2.0, 3)
    assert flushed_agent(h)["skillPoints"] == -2.0
    h.send("agent.reinstate", {"agentId": "build"})
    assert flushed_agent(h) == {"skillPoints": 1.0, "experiencePoints": 0.0, "communicationScore": 0.0,
                                "totalCommits": 0, "totalBugs": 3, "totalPushes": 0, "halted": False}


def test_reinstating_a_healthy_agent_changes_nothing(make) -> None:
    h = make(ScoringRules(initial_skill_points=3.0))
    h.send("tool.executed", tool("s1", "c"))
    h.send("agent.reinstate", {"agentId": "build"})
    assert flushed_agent(h)["skillPoints"] == 3.0
    assert h.of("agent.state") == []


@pytest.mark.parametrize(("value", "stored", "score"), [
    (-1, -1, 59.0), ("bad", -1, 59.0), (1, 1, 61.0), ("neutral", 1, 61.0), (2, 2, 62.0), ("good", 2, 62.0),
    (5, 5, 65.0), ("excellence", 5, 65.0),
])
def test_each_valid_grade_through_the_service(h: ServiceHarness, project: Path, value: Any, stored: int,
                                              score: float) -> None:
    commit_hash = commit(h, project, 0)
    assert grade(h, project, commit_hash, value) == {"agentId": "build", "commitHash": commit_hash,
                                                     "grade": stored, "communicationScore": score}
    assert flushed_agent(h)["communicationScore"] == score
    [(_, record)] = h.all("communication")
    assert (record["grade"], record["gradeName"], record["grader"], record["commitHash"]) == (
        stored, {-1: "bad", 1: "neutral", 2: "good", 5: "excellence"}[stored], "agent", commit_hash)


@pytest.mark.parametrize("value", [3, "2", 2.5, None, math.nan, True, 0, "Good", math.inf])
def test_rejected_grades_leave_everything_unchanged(h: ServiceHarness, project: Path, value: Any) -> None:
    commit_hash = commit(h, project, 0)
    assert h.service.flush().errors == []
    status, txn = h.status("build"), h.store.last_txn_id()
    journal = h.service.journal
    seq, size = journal.seq, journal.path.stat().st_size
    with pytest.raises(InvalidParams) as caught:
        grade(h, project, commit_hash, value)
    assert GRADES_TEXT in str(caught.value)
    assert str(caught.value).startswith("grade: params.grade must be")
    assert h.status("build") == status
    assert not h.service.pending
    assert (journal.seq, journal.path.stat().st_size) == (seq, size)
    assert h.service.flush().transactions == 0
    assert h.store.last_txn_id() == txn
    assert h.count("communication") == 0
    # ... and the commit can still be graded properly afterwards.
    assert grade(h, project, commit_hash, 2)["communicationScore"] == 62.0
