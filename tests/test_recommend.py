"""`agent-tracker recommend [DIR]`: exact stack, the language fallback, all projects, an empty database.

Real TrackingService on real LMDB (test_report.Tracker), the real command line (bridge.cli.main).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import cli
from test_report import CLAUDE, GPT, QWEN, Tracker, expected_score

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


def test_exact_stack(capsys: pytest.CaptureFixture[str], world: dict[str, Path]) -> None:
    answer = recommend(capsys, world, "fastapi")
    assert (answer["stack"], answer["language"], answer["level"], answer["scope"]) == (
        "python/fastapi", "python", "stack", "python/fastapi")
    assert [level["level"] for level in answer["levels"]] == ["stack"]
    assert answer["levels"][0] == {"level": "stack", "scope": "python/fastapi", "sessions": 8, "setups": 3,
                                   "rankedSetups": 2}
    best, runner = answer["recommendation"], answer["runnerUp"]
    assert (best["agent"], best["model"], best["sessions"], best["score"]) == (
        "build", "anthropic/claude-sonnet-4-5", 3, pytest.approx(CLAUDE_SCORE, abs=1e-9))
    assert (runner["agent"], runner["model"], runner["score"]) == (
        "general", "ollama/qwen3-coder:30b", pytest.approx(QWEN_SCORE, abs=1e-9))
    assert answer["config"] == {"model": "anthropic/claude-sonnet-4-5",
                                "agent": {"build": {"model": "anthropic/claude-sonnet-4-5"}}}
    assert answer["lines"] == [
        f"{world['fastapi']}: a python/fastapi project.",
        "Use agent build with model anthropic/claude-sonnet-4-5: the best setup on python/fastapi projects "
        "(answered at the exact-stack level).",
        f"Evidence: score {CLAUDE_SCORE:.1f}/100 over 3 sessions in 1 project: 3 commits (1.00 per session), mean "
        "user grade 2.00 on -1..5 (3 grades), mean agent grade 2.00 on -1..5 (3 grades), 0.00 bugs per commit.",
        "Cost: not recorded for its sessions (the plugin records it from now on; agent-tracker import-opencode "
        "brings in what past sessions cost).",
        f"Runner-up: agent general with ollama/qwen3-coder:30b, score {QWEN_SCORE:.1f}/100 over 3 sessions "
        "(1.00 commits per session, mean user grade 1.00 on -1..5).",
    ]

    code, out, _ = cli(capsys, "recommend", str(world["fastapi"]), "--database", str(world["database"]))
    assert code == 0
    assert out == "\n".join(answer["lines"]) + "\n\nOpenCode configuration (opencode.json in the project, or your " \
        "global one):\n" + json.dumps(answer["config"], indent=2) + "\n"


def test_language_fallback_counts_every_stack_of_the_language(capsys: pytest.CaptureFixture[str],
                                                              world: dict[str, Path]) -> None:
    for where, stack in (("django", "python/django"), ("flask", "python/flask")):
        answer = recommend(capsys, world, where)
        assert (answer["stack"], answer["level"], answer["scope"]) == (stack, "language", "python")
        assert [level["level"] for level in answer["levels"]] == ["stack", "language"]
        best, runner = answer["recommendation"], answer["runnerUp"]
        # gpt: 2 fastapi + 2 flask sessions, scored once over all four.
        assert (best["agent"], best["model"], best["stack"], best["sessions"], best["commits"]) == (
            "build", "openai/gpt-5", "python", 4, 4)
        assert best["score"] == pytest.approx(GPT_SCORE, abs=1e-9)
        assert (runner["model"], runner["score"]) == ("anthropic/claude-sonnet-4-5",
                                                      pytest.approx(CLAUDE_SCORE, abs=1e-9))
        assert answer["lines"][1] == (
            f"Use agent build with model openai/gpt-5: no {stack} setup has 3 sessions yet, so the best setup on "
            "all python projects (answered at the language level).")
        assert answer["lines"][2].startswith(f"Evidence: score {GPT_SCORE:.1f}/100 over 4 sessions in 2 projects: ")
    flask = recommend(capsys, world, "flask")
    assert flask["levels"][0] == {"level": "stack", "scope": "python/flask", "sessions": 2, "setups": 1,
                                  "rankedSetups": 0}


def test_global_fallback(capsys: pytest.CaptureFixture[str], world: dict[str, Path]) -> None:
    answer = recommend(capsys, world, "axum")
    assert (answer["stack"], answer["language"], answer["level"], answer["scope"]) == (
        "rust/axum", "rust", "all", "all projects")
    assert [level["level"] for level in answer["levels"]] == ["stack", "language", "all"]
    assert (answer["recommendation"]["model"], answer["recommendation"]["stack"]) == ("openai/gpt-5", "all")
    assert answer["lines"][1] == ("Use agent build with model openai/gpt-5: no rust/axum or rust setup has 3 "
                                  "sessions yet, so the best setup across all projects (answered at the "
                                  "all-projects level).")
    # A folder whose stack is not recognised goes straight to all projects.
    answer = recommend(capsys, world, "plain")
    assert (answer["stack"], answer["language"], answer["level"]) == ("unknown", None, "all")
    assert [level["level"] for level in answer["levels"]] == ["all"]
    assert answer["lines"][:2] == [f"{world['plain']}: stack not recognised.",
                                   "Use agent build with model openai/gpt-5: the stack is not recognised, so the "
                                   "best setup across all projects (answered at the all-projects level)."]
    # A higher minimum sample: nobody qualifies anywhere.
    answer = recommend(capsys, world, "fastapi", "--min-sessions", "5")
    assert (answer["level"], answer["recommendation"], answer["config"]) == (None, None, None)
    assert answer["lines"][1] == ("Nothing to recommend yet: no setup has the 5 sessions needed (the most used, "
                                  "agent build with openai/gpt-5, has 4).")


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
        "\n\nOpenCode configuration (opencode.json in the project, or your global one):\n"
        + json.dumps({"model": "openai/gpt-5", "agent": {"build": {"model": "openai/gpt-5"}}}, indent=2) + "\n")


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
        assert answer["text"].startswith(f"{new}: a python/fastapi project.\nUse agent build with model openai/gpt-5: "
                                         "the best setup on python/fastapi projects")
        with pytest.raises(Exception) as caught:
            await bridge.request("recommend", {"directory": str(tmp_path / "gone")})
        assert getattr(caught.value, "code", None) == -32602
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
