"""`agent-tracker recommend [DIR]`: exact stack, the language fallback, all projects, an empty database.

Real TrackingService on real LMDB (test_report.Tracker), the real command line (bridge.cli.main).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import cli
from test_report import CLAUDE, GPT, OPUS, QWEN, Tracker, expected_score

from bridge.config import BridgeConfig
from bridge.report.recommend import recommend_for
from bridge.store import Store


def folder(root: Path, name: str, files: dict[str, str]) -> Path:
    path = root / name
    path.mkdir(parents=True)
    for file_name, text in files.items():
        (path / file_name).write_text(text)
    return path


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """fastapi: claude 3 sessions (ranked), qwen 3 (ranked), gpt 2 (not ranked); flask: gpt 2.
    So gpt has 4 python sessions: ranked only when python stacks count together."""
    fastapi = folder(tmp_path, "shop", {"pyproject.toml": '[project]\ndependencies = ["fastapi"]\n'})
    flask = folder(tmp_path, "blog", {"requirements.txt": "flask==3.0\n"})
    t = Tracker(tmp_path / "db.lmdb")
    for n in range(3):
        t.session(f"c{n}", fastapi, "build", CLAUDE, commits=[(2, 2)])
        t.session(f"q{n}", fastapi, "general", QWEN, commits=[(-1, 1)])
    for n in range(2):
        t.session(f"gf{n}", fastapi, "build", GPT, commits=[(5, 5)])
        t.session(f"gk{n}", flask, "build", GPT, commits=[(5, 5)])
    t.close()
    return {"database": tmp_path / "db.lmdb", "fastapi": fastapi, "flask": flask,
            "django": folder(tmp_path, "admin", {"pyproject.toml": '[project]\ndependencies = ["django"]\n'}),
            "axum": folder(tmp_path, "gateway", {"Cargo.toml": '[dependencies]\naxum = "0.7"\n'}),
            "plain": folder(tmp_path, "notes", {})}


CLAUDE_SCORE = expected_score([2, 2, 2], [2, 2, 2], 3, 3, 0)
QWEN_SCORE = expected_score([1, 1, 1], [-1, -1, -1], 3, 3, 0)
GPT_SCORE = expected_score([5] * 4, [5] * 4, 4, 4, 0)
# At the language and all-projects levels claude's setup holds the same 3 sessions (one stack).


def recommend(capsys: pytest.CaptureFixture[str], world: dict[str, Path], where: str, *extra: str) -> dict:
    code, out, err = cli(capsys, "recommend", str(world[where]), "--database", str(world["database"]), "--json",
                         *extra)
    assert code == 0, err
    return json.loads(out)


CONFIG_TEXT = "\n\nOpenCode configuration (opencode.json in the project, or your global one):\n"


def test_exact_stack(capsys: pytest.CaptureFixture[str], world: dict[str, Path]) -> None:
    """Every setup with a session is a contender (gpt has 2): the posterior names the leader."""
    answer = recommend(capsys, world, "fastapi")
    assert (answer["stack"], answer["language"], answer["level"], answer["scope"]) == (
        "python/fastapi", "python", "stack", "python/fastapi")
    assert [level["level"] for level in answer["levels"]] == ["stack"]
    assert answer["levels"][0] == {"level": "stack", "scope": "python/fastapi", "sessions": 8, "setups": 3,
                                   "rankedSetups": 2, "contenders": 3}
    assert answer["minSessions"] == 1 and answer["confidentAt"] == 0.8
    best, runner = answer["recommendation"], answer["runnerUp"]
    assert (best["agent"], best["model"], best["sessions"], best["score"]) == (
        "build", "openai/gpt-5", 2, pytest.approx(expected_score([5, 5], [5, 5], 2, 2, 0), abs=1e-9))
    assert best["ranked"] is False  # the report's rank still needs 3 sessions; the answer does not
    assert (best["probabilityBest"], [round(x, 2) for x in best["scoreInterval"]]) == (0.9825, [77.53, 88.89])
    assert (runner["agent"], runner["model"], runner["score"], runner["probabilityBest"]) == (
        "build", "anthropic/claude-sonnet-4-5", pytest.approx(CLAUDE_SCORE, abs=1e-9), 0.017)
    assert [(c["model"], c["probabilityBest"], c["sessions"]) for c in answer["contenders"]] == [
        ("openai/gpt-5", 0.9825, 2), ("anthropic/claude-sonnet-4-5", 0.017, 3), ("ollama/qwen3-coder:30b", 0.0005, 3)]
    assert sum(c["probabilityBest"] for c in answer["contenders"]) == pytest.approx(1.0)
    assert (answer["confident"], answer["tryNext"], answer["judgedFrom"], answer["stackSpread"]) == (True, [], [], None)
    assert answer["config"] == {"model": "openai/gpt-5", "agent": {"build": {"model": "openai/gpt-5"}}}
    assert answer["lines"] == [
        f"{world['fastapi']}: a python/fastapi project.",
        "Use agent build with model openai/gpt-5 (P(best) 0.98 over 2 sessions; score 75.0/100, 80 % interval 78-89): "
        "the best setup on python/fastapi projects (answered at the exact-stack level).",
        "Evidence: 2 commits in 1 project (1.00 per session), mean user grade 5.00 on -1..5 (2 grades), mean agent grade 5.00 on -1..5 "
        "(2 grades), 0.00 bugs per commit.",
        "Cost: not recorded for its sessions (the plugin records it from now on; agent-tracker import-opencode "
        "brings in what past sessions cost).",
        f"Runner-up: agent build with anthropic/claude-sonnet-4-5, P(best) 0.02 over 3 sessions (score "
        f"{CLAUDE_SCORE:.1f}/100, 80 % interval 64-67; 1.00 commits per session, mean user grade 2.00 on -1..5).",
    ]

    code, out, _ = cli(capsys, "recommend", str(world["fastapi"]), "--database", str(world["database"]))
    assert code == 0
    assert out == "\n".join(answer["lines"]) + CONFIG_TEXT + json.dumps(answer["config"], indent=2) + "\n"
    # The same database gives the same numbers (the draws are seeded by the data).
    assert recommend(capsys, world, "fastapi") == answer


def test_a_stack_with_one_setup_answers_there(capsys: pytest.CaptureFixture[str], world: dict[str, Path]) -> None:
    """flask has only gpt's 2 sessions: no longer a fallback to the language (no 3-session gate)."""
    answer = recommend(capsys, world, "flask")
    # The only setup tried is the best of one: no verdict, whatever its P(best).
    assert (answer["level"], answer["confident"]) == ("stack", False)
    assert [(t["model"], t["sessions"]) for t in answer["tryNext"]] == [("openai/gpt-5", 2)]
    assert answer["levels"] == [{"level": "stack", "scope": "python/flask", "sessions": 2, "setups": 1,
                                 "rankedSetups": 0, "contenders": 1}]
    assert (answer["recommendation"]["model"], answer["recommendation"]["probabilityBest"]) == ("openai/gpt-5", 1.0)
    assert answer["runnerUp"] is None
    assert answer["lines"][1] == ("Only one setup was used on python/flask projects (answered at the exact-stack "
                                  "level): agent build with model openai/gpt-5 (2 sessions; score 75.0/100, 80 % interval "
                                  f"{answer['recommendation']['scoreInterval'][0]:.0f}-"
                                  f"{answer['recommendation']['scoreInterval'][1]:.0f}). With nothing to compare it "
                                  "with this is no verdict: try another agent or model on this project too.")
    assert answer["lines"][-1] == "Runner-up: none yet (no other setup at this level has a session)."


def test_language_fallback_counts_every_stack_of_the_language(capsys: pytest.CaptureFixture[str],
                                                              world: dict[str, Path]) -> None:
    answer = recommend(capsys, world, "django")
    assert (answer["stack"], answer["level"], answer["scope"]) == ("python/django", "language", "python")
    assert [level["level"] for level in answer["levels"]] == ["stack", "language"]
    assert answer["levels"][0] == {"level": "stack", "scope": "python/django", "sessions": 0, "setups": 0,
                                   "rankedSetups": 0, "contenders": 0}
    best, runner = answer["recommendation"], answer["runnerUp"]
    # gpt: 2 fastapi + 2 flask sessions, scored once over all four.
    assert (best["agent"], best["model"], best["stack"], best["sessions"], best["commits"]) == (
        "build", "openai/gpt-5", "python", 4, 4)
    assert best["score"] == pytest.approx(GPT_SCORE, abs=1e-9)
    assert (runner["model"], runner["score"]) == ("anthropic/claude-sonnet-4-5", pytest.approx(CLAUDE_SCORE, abs=1e-9))
    # Judged from other stacks: said so first, and the spread between stacks widens the interval.
    assert answer["judgedFrom"] == ["python/fastapi", "python/flask"]
    assert answer["stackSpread"] == 2.75
    assert (best["probabilityBest"], [round(x, 2) for x in best["scoreInterval"]]) == (0.9785, [80.01, 92.87])
    assert answer["lines"][:2] == [
        f"{world['django']}: a python/django project; no python/django history: judged from python/fastapi and "
        "python/flask, with the doubt that setups differ between stacks (about 2.8 score points).",
        f"Use agent build with model openai/gpt-5 (P(best) 0.98 over 4 sessions; score {GPT_SCORE:.1f}/100, 80 % "
        "interval 80-93): the best setup on all python projects (answered at the language level)."]
    assert answer["lines"][2].startswith("Evidence: 4 commits in 2 projects ")


def test_the_doubt_between_stacks_widens_the_interval(world: dict[str, Path]) -> None:
    """The same setups judged without the between-stack spread: a narrower interval."""
    from bridge.report.build import build_report
    from bridge.report.posterior import judge

    with Store.open(BridgeConfig(database_path=str(world["database"])), readonly=True) as store:
        advice = recommend_for(store, world["django"])
        plain = build_report(store, stack="python", group="language")
    assert advice.answer is not None
    pooled = [row for row in plain.setups]
    judge(pooled, plain.agreements)
    with_doubt = {row.model: row.score_interval for row in advice.answer.contenders}
    without = {row.model: row.score_interval for row in pooled}
    for model, (low, high) in without.items():
        assert with_doubt[model][1] - with_doubt[model][0] > (high - low) + 1.0, model


def test_global_fallback(capsys: pytest.CaptureFixture[str], world: dict[str, Path]) -> None:
    answer = recommend(capsys, world, "axum")
    assert (answer["stack"], answer["language"], answer["level"], answer["scope"]) == (
        "rust/axum", "rust", "all", "all projects")
    assert [level["level"] for level in answer["levels"]] == ["stack", "language", "all"]
    assert (answer["recommendation"]["model"], answer["recommendation"]["stack"]) == ("openai/gpt-5", "all")
    assert answer["lines"][:2] == [
        f"{world['axum']}: a rust/axum project; no rust/axum history: judged from python/fastapi and python/flask, "
        "with the doubt that setups differ between stacks (about 2.8 score points).",
        f"Use agent build with model openai/gpt-5 (P(best) 0.97 over 4 sessions; score {GPT_SCORE:.1f}/100, 80 % "
        "interval 80-93): the best setup across all projects (answered at the all-projects level)."]
    # A folder whose stack is not recognised goes straight to all projects.
    answer = recommend(capsys, world, "plain")
    assert (answer["stack"], answer["language"], answer["level"]) == ("unknown", None, "all")
    assert [level["level"] for level in answer["levels"]] == ["all"]
    assert answer["lines"][0] == (f"{world['plain']}: stack not recognised; judged from python/fastapi and "
                                  "python/flask, with the doubt that setups differ between stacks (about 2.8 score "
                                  "points).")
    # A higher minimum sample: nobody qualifies anywhere.
    answer = recommend(capsys, world, "fastapi", "--min-sessions", "5")
    assert (answer["level"], answer["recommendation"], answer["config"], answer["confident"], answer["tryNext"]) == (
        None, None, None, False, [])
    assert answer["lines"][1] == ("Nothing to recommend yet: no setup has the 5 sessions asked for (the most used, "
                                  "agent build with openai/gpt-5, has 4).")


@pytest.fixture
def race(tmp_path: Path) -> dict[str, Path]:
    """Three close setups on one stack, one of them with a single session: nobody is sure yet."""
    shop = folder(tmp_path, "shop", {"pyproject.toml": '[project]\ndependencies = ["fastapi"]\n'})
    t = Tracker(tmp_path / "race.lmdb")
    for n in range(3):
        t.session(f"c{n}", shop, "build", CLAUDE, commits=[(2, 2), (2, 1)])
    t.session("q0", shop, "build", QWEN, commits=[(2, 2)])
    for n in range(2):
        t.session(f"o{n}", shop, "plan", OPUS, commits=[(2, 2)])
    t.close()
    return {"database": tmp_path / "race.lmdb", "fastapi": shop}


def test_not_sure_yet_names_the_leader_and_what_to_try(capsys: pytest.CaptureFixture[str],
                                                        race: dict[str, Path]) -> None:
    answer = recommend(capsys, race, "fastapi")
    assert (answer["level"], answer["confident"]) == ("stack", False)
    best = answer["recommendation"]
    assert (best["model"], best["sessions"], best["probabilityBest"]) == ("anthropic/claude-opus-4-1", 2, 0.42)
    # The leader's configuration, for a user who wants to act on a lean.
    assert answer["config"] == {"model": "anthropic/claude-opus-4-1",
                                "agent": {"plan": {"model": "anthropic/claude-opus-4-1"}}}
    # Every setup with a real chance, the least tried first: the one with a single session leads the list.
    assert [(t["agent"], t["model"], t["probabilityBest"], t["sessions"]) for t in answer["tryNext"]] == [
        ("build", "ollama/qwen3-coder:30b", 0.4095, 1), ("plan", "anthropic/claude-opus-4-1", 0.42, 2),
        ("build", "anthropic/claude-sonnet-4-5", 0.1705, 3)]
    assert answer["lines"][1:4] == [
        "Not sure yet. The leader on python/fastapi projects (answered at the exact-stack level) is agent plan with "
        "model anthropic/claude-opus-4-1 (P(best) 0.42 over 2 sessions; score 63.8/100, 80 % interval 64-69), short of "
        "the 0.80 this answer needs to say \"use it\".",
        "Still in the race (least tried first): build with ollama/qwen3-coder:30b (P(best) 0.41, 1 session); plan "
        "with anthropic/claude-opus-4-1 (P(best) 0.42, 2 sessions); build with anthropic/claude-sonnet-4-5 (P(best) "
        "0.17, 3 sessions). To settle it, run your next sessions with agent build and model ollama/qwen3-coder:30b "
        "(agent-tracker recommend --explore picks each next one by its chance).",
        "Evidence: 2 commits in 1 project (1.00 per session), mean user grade 2.00 on -1..5 (2 grades), mean agent grade 2.00 on -1..5 "
        "(2 grades), 0.00 bugs per commit."]
    sonnet = next(row for row in answer["contenders"] if row["model"] == "anthropic/claude-sonnet-4-5")
    assert sonnet["sessions"] == 3  # its self-grades, one a grade off the user's on 6 commits, weigh less


def test_explore_draws_the_next_setup_from_the_posterior(capsys: pytest.CaptureFixture[str],
                                                         race: dict[str, Path]) -> None:
    answer = recommend(capsys, race, "fastapi")
    explore = answer["explore"]
    assert (explore["agent"], explore["model"], explore["sessions"], explore["probabilityBest"]) == (
        "plan", "anthropic/claude-opus-4-1", 2, 0.42)
    assert explore["config"] == {"model": "anthropic/claude-opus-4-1",
                                 "agent": {"plan": {"model": "anthropic/claude-opus-4-1"}}}
    assert explore["lines"][1] == (
        "To learn which is best: try agent plan with model anthropic/claude-opus-4-1 next; it has a 42 % chance of "
        "being best on python/fastapi projects (answered at the exact-stack level) and only 2 sessions.")
    code, out, _ = cli(capsys, "recommend", str(race["fastapi"]), "--database", str(race["database"]), "--explore")
    assert code == 0
    assert out == explore["text"] == "\n".join(explore["lines"]) + CONFIG_TEXT + json.dumps(explore["config"],
                                                                                             indent=2) + "\n"
    # Thompson sampling: over many posteriors, each setup is drawn about as often as its P(best).
    from bridge.report.posterior import posterior

    with Store.open(BridgeConfig(database_path=str(race["database"])), readonly=True) as store:
        level = recommend_for(store, race["fastapi"]).answer
    assert level is not None
    rows = level.contenders
    picks = [0] * len(rows)
    for n in range(400):
        post = posterior(rows, draws=400, agent_weights=[row.self_grade_weight + n * 1e-7 for row in rows])
        picks[post.thompson()] += 1
    for row, count in zip(rows, picks):
        assert abs(count / 400 - (row.probability_best or 0)) < 0.08, (row.model, count)


def test_empty_database_says_so_and_exits_0(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    Tracker(tmp_path / "empty.lmdb").close()
    monkeypatch.chdir(tmp_path)  # DIR defaults to the current folder
    code, out, err = cli(capsys, "recommend", "--database", str(tmp_path / "empty.lmdb"))
    assert (code, err) == (0, "")
    assert out == (f"{tmp_path}: stack not recognised.\nNothing to recommend yet: {tmp_path / 'empty.lmdb'} holds "
                   "no sessions. Use OpenCode with the plugin (agent-tracker install-plugin), or try agent-tracker "
                   "demo.\n")
    code, out, _ = cli(capsys, "recommend", "--json", "--database", str(tmp_path / "empty.lmdb"))
    assert code == 0 and json.loads(out)["recommendation"] is None


def test_errors(capsys: pytest.CaptureFixture[str], world: dict[str, Path], tmp_path: Path) -> None:
    code, _, err = cli(capsys, "recommend", str(tmp_path / "nowhere"), "--database", str(world["database"]))
    assert code == 1
    assert err == (f"agent-tracker: No folder at {tmp_path / 'nowhere'}: give the project's folder (default: the "
                   "current one).\n")
    code, _, err = cli(capsys, "recommend", str(world["fastapi"]), "--database", str(tmp_path / "none.lmdb"))
    assert code == 3 and "No agent-tracker database at" in err
    code, _, err = cli(capsys, "recommend", str(world["fastapi"]), "--database", str(world["database"]),
                       "--min-sessions", "0")
    assert code == 2 and "--min-sessions must be at least 1; got 0." in err


def test_an_80_column_terminal_gets_whole_words_within_80_columns(capsys: pytest.CaptureFixture[str],
                                                                   world: dict[str, Path],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = cli(capsys, "recommend", str(world["fastapi"]), "--database", str(world["database"]))
    assert code == 0
    lines = out.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    words = " ".join(out.split())  # folded between words: the sentences are whole again
    answer = recommend(capsys, world, "fastapi")
    assert all(" ".join(line.split()) in words for line in answer["lines"])
    assert len(lines) > len(answer["lines"]) + 9  # folded, and the 9-line config snippet


def test_the_function_and_the_command_agree(world: dict[str, Path]) -> None:
    with Store.open(BridgeConfig(database_path=str(world["database"])), readonly=True) as store:
        advice = recommend_for(store, world["django"])
    assert advice.text() == "\n".join(advice.lines()) + (
        CONFIG_TEXT + json.dumps({"model": "openai/gpt-5", "agent": {"build": {"model": "openai/gpt-5"}}}, indent=2) + "\n")


async def test_the_bridge_recommend_method_answers_as_the_command(capsys: pytest.CaptureFixture[str],
                                                                  isolated_home: Path, tmp_path: Path) -> None:
    """A new project (no session yet) gets the answer of the other projects of its stack, over the wire."""
    from support.tracking import spawn_bridge

    new = folder(tmp_path, "new-api", {"pyproject.toml": '[project]\ndependencies = ["fastapi"]\n'})
    other = folder(tmp_path, "old-api", {"pyproject.toml": '[project]\ndependencies = ["fastapi", "uvicorn"]\n'})
    database = tmp_path / "wire.lmdb"
    bridge, _ = await spawn_bridge(isolated_home, database, directory=new)
    try:
        for n in range(3):
            sid = f"s{n}"
            bridge.notify("session.created", {"sessionID": sid, "directory": str(other),
                                              "agent": {"id": "build", "provider": "openai", "model": "gpt-5"}})
            bridge.notify("tool.executed", {"sessionID": sid, "callID": f"c{n}", "tool": "bash", "success": True,
                                            "args": {"command": "git commit -m 'feat: x'"},
                                            "output": f"[main abc{n:04d}] feat: x\n"})
            await bridge.request("grade", {"sessionID": sid, "grade": 2, "grader": "user"})
        answer = await bridge.request("recommend", {})  # the default folder: initialize's project
        assert (answer["directory"], answer["level"]) == (str(new), "stack")
        assert answer["config"] == {"model": "openai/gpt-5", "agent": {"build": {"model": "openai/gpt-5"}}}
        code, out, _ = cli(capsys, "recommend", str(new), "--database", str(database), "--json")
        assert code == 0 and json.loads(out) == answer
        assert answer["text"].startswith(f"{new}: a python/fastapi project.\nOnly one setup was used on python/fastapi "
                                         "projects (answered at the exact-stack level): agent build with model "
                                         "openai/gpt-5 (3 sessions; score ")
        assert answer["confident"] is False and answer["explore"]["model"] == "openai/gpt-5"
        with pytest.raises(Exception) as caught:
            await bridge.request("recommend", {"directory": str(tmp_path / "gone")})
        assert getattr(caught.value, "code", None) == -32602
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()


def test_the_bridge_starts_without_numpy() -> None:
    """numpy (the posterior's draws) is imported when a report or recommendation is asked for,
    never by the bridge's startup imports: its cold start stays as it was."""
    import subprocess
    import sys

    code = ("import sys, bridge.__main__, bridge.rpc.server, bridge.cli, bridge.report.recommend; "
            "print('numpy' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "False"), result.stderr
