"""Issue 14 in the report: cost, tokens and time per setup, $/session, $/commit, tokens/commit, the
value figure, the cheapest setup within 5 points; a subagent's usage counts for its root's setup.
Databases are filled through the real TrackingService; every number is worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_report import CLAUDE, GPT, QWEN, Tracker, make_projects

from bridge.cli import main
from bridge.report.build import build_report
from bridge.report.model import Report, SetupRow
from bridge.report.recommend import recommend_for
from bridge.report.render import SETUP_COLUMNS, USAGE_COLUMNS, render_text

HAIKU = ("anthropic", "claude-haiku-4-5")


def usage(t: Tracker, sid: str, message: str, cost: float, tokens: dict[str, int], duration: int,
          agent: str | None = None, model: tuple[str, str] | None = None) -> None:
    params: dict[str, Any] = {"sessionID": sid, "messageID": message, "cost": cost, "tokens": tokens,
                              "durationMs": duration}
    if agent is not None:
        params["agent"] = {"id": agent, **({"provider": model[0], "model": model[1]} if model else {})}
    t.send("usage.recorded", params)


@pytest.fixture
def priced(tmp_path: Path) -> Tracker:
    """python/fastapi: build with claude (3 sessions, 4 commits, $1.05 with a subagent's $0.05) and
    build with gpt-5 (3 sessions, 3 commits, $0.09); typescript/react: build with a local qwen
    (3 sessions, 3 commits, $0); an older session without usage."""
    shop, web = make_projects(tmp_path)
    t = Tracker(tmp_path / "db.lmdb")
    t.session("c1", shop, "build", CLAUDE, tools=0, commits=[(None, None), (None, None)], delete=False)
    usage(t, "c1", "m1", 0.30, {"input": 1000, "output": 100, "cacheRead": 5000}, 4000)
    usage(t, "c1", "m2", 0.20, {"input": 800, "output": 50, "reasoning": 10}, 3000)
    usage(t, "c1", "m2", 0.20, {"input": 800, "output": 50, "reasoning": 10}, 3000)  # repeated: counts once
    t.session("c2", shop, "build", CLAUDE, tools=0, commits=[(None, None)], delete=False)
    usage(t, "c2", "m3", 0.25, {"input": 900, "output": 90}, 2000)
    t.session("c3", shop, "build", CLAUDE, tools=0, commits=[(None, None)], delete=False)
    usage(t, "c3", "m4", 0.25, {"input": 700, "output": 70, "cacheWrite": 30}, 6000)
    # c3's subagent: its own session (agent general on haiku), its cost counts for c3's setup
    t.send("session.created", {"sessionID": "c3-sub", "directory": str(shop), "parentID": "c3",
                               "agent": {"id": "general", "provider": HAIKU[0], "model": HAIKU[1]}})
    usage(t, "c3-sub", "m5", 0.05, {"input": 400, "output": 40}, 5000)
    for sid in ("g1", "g2", "g3"):
        t.session(sid, shop, "build", GPT, tools=0, commits=[(None, None)], delete=False)
        usage(t, sid, f"{sid}-m", 0.03, {"input": 300, "output": 30}, 1000, "build", GPT)
    for sid in ("q1", "q2", "q3"):
        t.session(sid, web, "build", QWEN, tools=0, commits=[(None, None)], delete=False)
        usage(t, sid, f"{sid}-m", 0.0, {"input": 2000, "output": 200}, 9000)
    t.session("old", shop, "build", CLAUDE, tools=1, delete=False)  # tracked before usage was recorded
    t.flush()
    yield t
    t.store.close()


def row(report: Report, agent: str, model: str) -> SetupRow:
    return next(r for r in report.setups if (r.agent, r.model) == (agent, model))


def test_usage_per_setup_exactly(priced: Tracker) -> None:
    report = build_report(priced.store)
    claude = row(report, "build", "anthropic/claude-sonnet-4-5")
    assert claude.sessions == 4  # c1, c2, c3 and the old one
    assert (claude.usage.sessions, claude.usage.commits, claude.usage.messages) == (3, 4, 5)
    assert claude.cost == 0.30 + 0.20 + 0.25 + 0.25 + 0.05
    assert (claude.usage.input, claude.usage.output, claude.usage.reasoning, claude.usage.cache_read,
            claude.usage.cache_write) == (3800, 350, 10, 5000, 30)
    assert claude.usage.duration_ms == 4000 + 3000 + 2000 + 6000  # the subagent's time is inside c3's
    assert claude.cost_per_session == claude.cost / 3
    assert claude.cost_per_commit == claude.cost / 4
    assert claude.tokens_per_commit == 9190 / 4
    assert claude.time_per_session_ms == 15000 / 3
    assert claude.value == claude.score / (claude.cost / 3)
    # the subagent's session is no setup of its own (issue 15): build's, with its usage
    assert [r.agent for r in report.setups if r.agent == "general"] == []

    gpt = row(report, "build", "openai/gpt-5")
    assert (gpt.cost, gpt.cost_per_commit, gpt.usage.sessions) == (0.03 + 0.03 + 0.03, (0.03 + 0.03 + 0.03) / 3, 3)
    qwen = row(report, "build", "ollama/qwen3-coder:30b")
    assert (qwen.cost, qwen.cost_per_commit, qwen.zero_cost, qwen.value) == (0.0, 0.0, True, None)
    assert qwen.tokens_per_commit == 2200
    assert report.usage.messages == 5 + 3 + 3 and report.usage.cost == pytest.approx(1.05 + 0.09)


def test_the_wire_carries_usage(priced: Tracker) -> None:
    wire = json.loads(json.dumps(build_report(priced.store).to_wire()))
    claude = next(s for s in wire["setups"] if s["setup"] == "build|anthropic/claude-sonnet-4-5")
    assert claude["tokens"] == {"input": 3800, "output": 350, "reasoning": 10, "cacheRead": 5000, "cacheWrite": 30,
                                "total": 9190}
    assert claude["usage"] == {"messages": 5, "cost": claude["cost"], "tokens": claude["tokens"], "durationMs": 15000,
                               "sessions": 3, "commits": 4}
    assert (claude["costPerCommit"], claude["tokensPerCommit"], claude["timePerSessionMs"]) == (
        claude["cost"] / 4, 9190 / 4, 5000)
    qwen = next(s for s in wire["setups"] if s["model"] == "ollama/qwen3-coder:30b")
    assert (qwen["value"], qwen["zeroCost"], qwen["cost"]) == (None, True, 0.0)
    assert wire["usage"]["messages"] == 11


def test_recommendations_name_cost_and_the_cheapest_setup_within_5_points(priced: Tracker) -> None:
    report = build_report(priced.store)
    shop, web = (next(rec for rec in report.recommendations if rec.stack == stack)
                 for stack in ("python/fastapi", "typescript/react"))
    claude, gpt = row(report, "build", "anthropic/claude-sonnet-4-5"), row(report, "build", "openai/gpt-5")
    assert (claude.rank, gpt.rank) == (1, 2) and claude.score - gpt.score < 5
    assert shop.text == (
        f"For python/fastapi projects, use agent build with anthropic/claude-sonnet-4-5: score {claude.score:.1f}/100 "
        f"over 4 sessions (1.00 commits/session, no user grades yet, no agent grades yet, 0.00 bugs/commit, "
        f"0.26 $/commit; cheapest setup within 5 points: build with openai/gpt-5 at 0.03 $/commit (score "
        f"{gpt.score:.1f})); next: build with openai/gpt-5 at {gpt.score:.1f}.")
    assert shop.to_wire()["cheapest"] == {"agent": "build", "model": "openai/gpt-5", "setup": "build|openai/gpt-5",
                                          "score": gpt.score, "costPerCommit": 0.03 * 3 / 3}
    assert web.text.endswith("0.00 bugs/commit, 0.00 $/commit; it is the cheapest setup within 5 points).")


def test_recommend_names_cost_and_the_cheapest_setup_within_5_points(priced: Tracker, tmp_path: Path) -> None:
    report = build_report(priced.store)
    claude, gpt = row(report, "build", "anthropic/claude-sonnet-4-5"), row(report, "build", "openai/gpt-5")
    advice = recommend_for(priced.store, tmp_path / "projects" / "shop")
    assert advice.answer is not None and advice.answer.name == "stack"
    lines = advice.lines()
    # Neither has a grade: a near tie (P(best) 0.51 and 0.49), so not sure yet, and the leader is gpt.
    assert advice.confident is False
    assert [(r.model, r.probability_best) for r in advice.answer.contenders] == [
        ("openai/gpt-5", 0.5115), ("anthropic/claude-sonnet-4-5", 0.4885)]
    assert lines[4] == "Cost: 0.03 $ per session, 0.03 $ per commit; no setup within 5 points of it is cheaper per commit."
    # claude: $1.05 over the 3 sessions with usage (the old one has none), 4 commits
    assert lines[5].endswith("no user grades yet, 0.26 $ per commit).")
    assert f"{claude.cost_per_session:.2f} {claude.cost_per_commit:.2f}" == "0.35 0.26"
    wire = advice.to_wire()
    assert (wire["recommendation"]["setup"], wire["cheapest"]["setup"]) == (gpt.setup, gpt.setup)
    assert wire["cheapest"]["costPerCommit"] == pytest.approx(0.03)
    # the local model is its stack's best and costs nothing: no cheaper one
    web = recommend_for(priced.store, tmp_path / "projects" / "web").lines()
    assert web[3] == "Cost: 0.00 $ per session, 0.00 $ per commit; no setup within 5 points of it is cheaper per commit."


def test_a_setup_without_usage_is_recommended_without_cost(tmp_path: Path) -> None:
    shop, _ = make_projects(tmp_path)
    t = Tracker(tmp_path / "db.lmdb")
    for sid in ("a", "b", "c"):
        t.session(sid, shop, "build", CLAUDE, tools=1, commits=[(None, None)])
    t.flush()
    report = build_report(t.store)
    assert "$/commit" not in report.recommendations[0].text
    assert report.recommendations[0].to_wire()["cheapest"] is None
    assert not any(column in render_text(report) for column in ("$/S", "Tok/C"))
    t.store.close()


def test_the_fast_and_the_careful_scan_agree(priced: Tracker) -> None:
    def figures(report: Report) -> list[Any]:
        return sorted((r.setup, r.stack, r.sessions, r.usage.to_wire()) for r in report.setups)

    fast = build_report(priced.store)
    assert figures(build_report(priced.store, _force_slow=True)) == figures(fast)
    assert figures(build_report(priced.store, decoder="orjson")) == figures(fast)


def test_filters_keep_a_subagents_usage_with_its_root(priced: Tracker, tmp_path: Path) -> None:
    report = build_report(priced.store, agent="build", stack="python")
    claude = row(report, "build", "anthropic/claude-sonnet-4-5")
    assert claude.usage.messages == 5 and claude.cost == 0.30 + 0.20 + 0.25 + 0.25 + 0.05
    assert [r.agent for r in report.setups] == ["build", "build"]
    web = build_report(priced.store, project=str(tmp_path / "projects" / "web"))
    assert [(r.model, r.usage.messages) for r in web.setups] == [("ollama/qwen3-coder:30b", 3)]


def test_the_table_shows_the_cost_columns_when_they_fit(priced: Tracker) -> None:
    report = build_report(priced.store)
    wide = render_text(report, width=260, wide=True)
    header = next(line for line in wide.splitlines() if line.lstrip().startswith("#"))
    assert header.split()[-10:] == ["$/S", "$/C", "Tok/C", "Time/S", "Value", "Last", "used", "P(best)", "interval",
                                    "Score"]
    qwen_line = next(line for line in wide.splitlines() if "qwen3" in line)
    assert qwen_line.split()[-9:-4] == ["0.00", "0.00", "2.2k", "9.0s", "-"]
    claude = row(report, "build", "anthropic/claude-sonnet-4-5")
    claude_line = next(line for line in wide.splitlines() if "claude-sonnet" in line)
    assert claude_line.split()[-9:-4] == ["0.35", "0.26", "2.3k", "5.0s", f"{claude.value:,.0f}"]
    assert "Agent setups (10 sessions, 10 commits, 0 grades, 1.14 $ over 16.8k tokens" in wide
    # In a narrow terminal sessions and P(best) stay; the cost columns go (issue 26: never $/C
    # without the user grade, which does not fit here).
    narrow = render_text(report, width=80)
    header = next(line for line in narrow.splitlines() if line.lstrip().startswith("#"))
    assert header.split() == ["#", "Agent", "Model", "Sessions", "P(best)", "Score"]
    assert "User grade, $/C, Commits" in " ".join(narrow.split())
    assert "Value, $/S, Tok/C, Time/S (--wide" in " ".join(narrow.split())
    at_120 = render_text(report, width=120)
    header = next(line for line in at_120.splitlines() if line.lstrip().startswith("#"))
    assert header.split() == ["#", "Stack", "Agent", "Model", "Sessions", "grade", "$/C", "P(best)", "interval",
                              "Score"]
    assert [c.header for c in SETUP_COLUMNS if c.key in USAGE_COLUMNS] == ["$/S", "$/C", "Tok/C", "Time/S", "Value"]


def test_cli_json_and_csv_carry_the_figures(priced: Tracker, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    database = str(priced.store.path)
    priced.store.close()  # one LMDB environment per file and process: the CLI opens its own
    assert main(["report", "--json", "--database", database]) == 0
    wire = json.loads(capsys.readouterr().out)
    claude = next(s for s in wire["setups"] if s["setup"] == "build|anthropic/claude-sonnet-4-5")
    assert claude["costPerSession"] == claude["cost"] / 3
    assert main(["export", "--format", "csv", "--output", str(tmp_path / "csv"), "--database", database]) == 0
    header = (tmp_path / "csv" / "sessions.csv").read_text().splitlines()[0].split(",")
    assert {"cost", "tokens", "tokensInput", "tokensCacheRead", "durationMs", "messages"} <= set(header)
    usage_rows = (tmp_path / "csv" / "usage.csv").read_text().splitlines()
    assert len(usage_rows) == 1 + 11


# -- issue 26, item 11: spend under the model that produced it ------------------------------------

def test_a_subagents_spend_counts_under_its_own_model(priced: Tracker) -> None:
    """c3's subagent ran on haiku from a session on claude: `--model haiku` finds its $0.05, and
    `--model claude-sonnet-4-5` no longer counts it, though claude's setup row keeps it ($/C)."""
    haiku = build_report(priced.store, model="claude-haiku-4-5")
    assert (haiku.usage.cost, haiku.usage.messages, haiku.usage.sessions) == (0.05, 1, 1)
    assert [(m, u.cost) for m, u in haiku.usage_by_model.items()] == [("anthropic/claude-haiku-4-5", 0.05)]
    sonnet = build_report(priced.store, model="claude-sonnet-4-5")
    assert sonnet.usage.cost == pytest.approx(0.30 + 0.20 + 0.25 + 0.25)
    assert sonnet.usage.messages == 4
    assert row(sonnet, "build", "anthropic/claude-sonnet-4-5").cost == pytest.approx(1.05)  # the setup's cost
    everything = build_report(priced.store)
    assert {m: round(u.cost, 6) for m, u in everything.usage_by_model.items()} == {
        "anthropic/claude-haiku-4-5": 0.05, "anthropic/claude-sonnet-4-5": 1.0, "ollama/qwen3-coder:30b": 0.0,
        "openai/gpt-5": 0.09}
    wire = everything.to_wire()
    assert [entry["model"] for entry in wire["usageByModel"]] == sorted(everything.usage_by_model)
    assert "subagents' spend" in render_text(sonnet, width=120)


def test_usage_sessions_counts_each_session_once(tmp_path: Path) -> None:
    """A session that switched model has two setups: usage.sessions still counts it once, and the
    sessions without usage are what totals.sessions has more."""
    shop, _ = make_projects(tmp_path)
    t = Tracker(tmp_path / "db.lmdb")
    t.session("s1", shop, "build", CLAUDE, tools=0, commits=[(None, None)], delete=False)
    usage(t, "s1", "m1", 0.10, {"input": 100}, 1000, "build", CLAUDE)
    usage(t, "s1", "m2", 0.20, {"input": 100}, 1000, "build", GPT)
    t.session("s2", shop, "build", CLAUDE, tools=1, delete=False)  # no usage recorded
    t.flush()
    report = build_report(t.store)
    assert sum(r.usage.sessions for r in report.setups) == 2  # one per setup it used
    assert (report.usage.sessions, report.totals["sessions"], report.usage.commits) == (1, 2, 1)
    t.store.close()
