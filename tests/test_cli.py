"""The `agent-tracker` commands: exit codes, messages, --json, replay, reinstate, demo."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import bridges
from test_report import CLAUDE, Tracker, make_projects, populate

from bridge import demo
from bridge.cli import main
from bridge.config import BridgeConfig
from bridge.report.build import build_report
from bridge.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "lmdbjs"
EXAMPLES = bridges.ROOT / "examples" / "sessions"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_script(home: Path, *argv: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed console script (or python -m bridge), as a user runs it."""
    script = Path(sys.executable).with_name("agent-tracker")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bridge"]
    return subprocess.run([*command, *argv], capture_output=True, text=True, timeout=timeout,
                          env=bridges.bridge_env(home, **env), cwd=str(home))


@pytest.fixture
def database(tmp_path: Path) -> Path:
    tracker, _, _ = populate(tmp_path)
    tracker.close()
    return tmp_path / "db.lmdb"


# -- exit codes for databases that cannot be read ----------------------------------------------------------

@pytest.mark.parametrize("command", [["report"], ["status"], ["status", "build"], ["export"]])
def test_missing_database_exits_3(capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "nothing.lmdb"
    code, out, err = cli(capsys, *command, "--database", str(missing))
    assert code == 3
    assert f"agent-tracker: No agent-tracker database at {missing}." in err
    assert "agent-tracker demo" in err and out == ""
    assert not missing.exists()  # reading never creates it


def test_missing_default_database_in_the_isolated_home(isolated_home: Path) -> None:
    result = run_script(isolated_home, "report")
    assert result.returncode == 3
    assert f"No agent-tracker database at {isolated_home / '.config/opencode/agent-tracker.lmdb'}" in result.stderr
    result = run_script(isolated_home, "report", "--json")
    assert result.returncode == 3 and json.loads(result.stdout)["exitCode"] == 3


def test_corrupt_database_exits_4(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.lmdb"
    garbage.write_bytes(b"this is not an LMDB file\x00\x01\x02" * 64)
    code, out, err = cli(capsys, "report", "--database", str(garbage))
    assert code == 4
    assert f"The file at {garbage} is not a readable agent-tracker database" in err
    code, out, err = cli(capsys, "status", "--json", "--database", str(garbage))
    assert code == 4 and json.loads(out)["exitCode"] == 4
    assert garbage.read_bytes().startswith(b"this is not an LMDB file")  # untouched


def test_empty_file_counts_as_no_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.lmdb"
    empty.touch()
    code, _, err = cli(capsys, "report", "--database", str(empty))
    assert code == 3 and "is empty" in err


def test_foreign_lmdbjs_database_exits_4_and_suggests_migrate(capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    fixture = FIXTURES / "flat.mdb"
    if not fixture.exists():
        pytest.skip("no lmdb-js fixture (tests/fixtures/lmdbjs/flat.mdb)")
    copy = tmp_path / "agent-tracker.lmdb"
    shutil.copyfile(fixture, copy)
    before = copy.read_bytes()
    for command in (["report"], ["status"], ["export", "--format", "jsonl"]):
        code, out, err = cli(capsys, *command, "--database", str(copy))
        assert code == 4, err
        assert "older TypeScript plugin" in err and "agent-tracker migrate" in err
    assert copy.read_bytes() == before


def test_invalid_configuration_exits_2(capsys: pytest.CaptureFixture[str], database: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = cli(capsys, "report", "--database", str(database), "--max-database-size", "5")
    assert code == 2
    assert "Invalid configuration: maxDatabaseSize must be between 1 MiB" in err
    monkeypatch.setenv("AGENT_TRACKER_MAX_DATABASE_SIZE", "lots")
    code, _, err = cli(capsys, "status", "--database", str(database))
    assert code == 2 and "must be a number of bytes" in err and "'lots'" in err
    monkeypatch.delenv("AGENT_TRACKER_MAX_DATABASE_SIZE")
    code, _, err = cli(capsys, "report", "--database", str(database), "--since", "last tuesday")
    assert code == 2 and "--since must be a date like 2026-01-31" in err
    code, _, err = cli(capsys, "report", "--database", str(database), "--min-sessions", "0")
    assert code == 2 and "--min-sessions must be at least 1" in err
    code, _, err = cli(capsys, "report", "--database", str(database), "--chart", str(database.parent / "c.gif"))
    assert code == 2 and ".png or .html" in err


def test_memory_database_has_nothing_to_read(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "report", "--database", ":memory:")
    assert code == 3 and "throw-away" in err


def test_environment_database_path_is_honoured(capsys: pytest.CaptureFixture[str], database: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_TRACKER_DATABASE_PATH", str(database))
    code, out, _ = cli(capsys, "status", "--json")
    assert code == 0 and json.loads(out)["database"] == str(database)
    # --database beats the environment
    code, _, err = cli(capsys, "status", "--database", str(database.parent / "other.lmdb"))
    assert code == 3


# -- reading commands --------------------------------------------------------------------------------------

def test_report_json_and_table(capsys: pytest.CaptureFixture[str], database: Path) -> None:
    code, out, _ = cli(capsys, "report", "--json", "--database", str(database))
    assert code == 0
    wire = json.loads(out)
    store = Store.open(BridgeConfig(database_path=str(database)), readonly=True)
    with store:
        expected = build_report(store).to_wire()
    for volatile in ("generatedAt", "durationMs"):
        wire.pop(volatile), expected.pop(volatile)
    assert wire == {**expected, "chart": None, "html": None}

    code, out, _ = cli(capsys, "report", "--database", str(database), "--stack", "typescript", "--min-sessions", "4")
    assert code == 0
    assert "typescript/react" in out and "python/fastapi" not in out.split("•")[0]
    assert "For typescript/react projects: not enough data yet" in out


def test_report_chart_option(capsys: pytest.CaptureFixture[str], database: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    chart = tmp_path / "charts" / "setups.png"
    chart.parent.mkdir()  # the folder must exist (issue 26)
    code, out, _ = cli(capsys, "report", "--json", "--database", str(database), "--chart", str(chart))
    assert code == 0 and json.loads(out)["chart"] == str(chart)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_status(capsys: pytest.CaptureFixture[str], database: Path) -> None:
    code, out, _ = cli(capsys, "status", "--json", "--database", str(database))
    assert code == 0
    agents = {row["agentId"]: row for row in json.loads(out)["agents"]}
    assert set(agents) == {"build", "plan", "general"}
    assert (agents["build"]["totalCommits"], agents["build"]["totalBugs"], agents["build"]["halted"]) == (9, 1, False)
    assert agents["plan"]["experiencePoints"] == 6.0 and agents["plan"]["nextLevelAt"] == 1000.0

    code, out, _ = cli(capsys, "status", "build", "--json", "--database", str(database))
    sheet = json.loads(out)
    assert sheet["agent"]["agentId"] == "build"
    assert {(s["model"], s["stack"]) for s in sheet["setups"]} == {
        ("anthropic/claude-sonnet-4-5", "python/fastapi"), ("openai/gpt-5", "python/fastapi"),
        ("anthropic/claude-sonnet-4-5", "typescript/react")}
    assert [event["kind"] for event in sheet["recent"]] == ["bug", "reinstate"]

    code, out, _ = cli(capsys, "status", "build", "--database", str(database))
    assert code == 0 and "SP 1" in out and "9 commits" in out and "Recent bugs and reinstatements" in out

    code, out, err = cli(capsys, "status", "nobody", "--database", str(database))
    assert code == 1 and "No agent named 'nobody'" in err and "Known agents: build, general, plan." in err


# -- replay -------------------------------------------------------------------------------------------------

def test_replay_examples_then_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    files = sorted(EXAMPLES.glob("*.jsonl"))
    assert len(files) >= 3
    target = tmp_path / "replayed.lmdb"
    code, out, err = cli(capsys, "replay", "--json", "--database", str(target), *map(str, files))
    assert code == 0, err
    result = json.loads(out)
    in_events = 0
    for path in files:
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if entry["dir"] == "in" and entry["msg"]["method"] not in ("initialize", "shutdown", "exit"):
                in_events += 1
    assert result["events"] == in_events and result["rejected"] == 0
    assert [item["file"] for item in result["files"]] == [str(p) for p in files]

    store = Store.open(BridgeConfig(database_path=str(target)), readonly=True)
    with store:
        report = build_report(store)
    # The recorded /demo/projects folders do not exist here: their stack is unknown.
    assert {row.stack for row in report.setups} == {"unknown"}
    assert report.totals["sessions"] == 16 and report.totals["commits"] == 19
    assert report.totals["subagentSessions"] == 2

    code, out, _ = cli(capsys, "replay", "--database", str(target), str(files[0]))
    assert code == 0 and "events replayed" in out


def test_replay_reports_rejected_and_bad_lines(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    recording = tmp_path / "bad.jsonl"
    lines = [
        {"dir": "in", "msg": {"jsonrpc": "2.0", "method": "session.created",
                              "params": {"sessionID": "s", "directory": str(tmp_path),
                                         "agent": {"id": "build", "provider": "p", "model": "m"}}}},
        {"dir": "in", "msg": {"jsonrpc": "2.0", "id": 3, "method": "grade",
                              "params": {"sessionID": "s", "grade": 5, "grader": "agent"}}},  # nothing to grade
        {"dir": "in", "msg": {"jsonrpc": "2.0", "method": "tool.executed", "params": {"sessionID": "s"}}},
        {"dir": "out", "msg": {"jsonrpc": "2.0", "id": 3, "error": {"code": -32602, "message": "x"}}},
        {"dir": "in", "msg": {"jsonrpc": "2.0", "method": "tool.executed",
                              "params": {"sessionID": "s", "callID": "c", "tool": "read", "success": True}}},
    ]
    recording.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n")
    code, out, _ = cli(capsys, "replay", "--json", "--database", str(tmp_path / "db.lmdb"), str(recording))
    assert code == 0
    (item,) = json.loads(out)["files"]
    assert (item["events"], item["rejected"], item["skipped"]) == (2, 2, 2)
    assert [p["line"] for p in item["problems"]] == [2, 3, 6]
    assert "There is no commit to grade" in item["problems"][0]["message"]
    assert "callID is required" in item["problems"][1]["message"]

    code, _, err = cli(capsys, "replay", "--database", str(tmp_path / "db.lmdb"), str(tmp_path / "none.jsonl"))
    assert code == 1 and "No such recording" in err


# -- reinstate ---------------------------------------------------------------------------------------------

def test_reinstate(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    shop, _ = make_projects(tmp_path)
    t = Tracker(tmp_path / "db.lmdb")
    t.session("s", shop, "build", CLAUDE, commits=[(2, 2)], delete=False)
    t.send("bug.reported", {"sessionID": "s", "description": "broke the build"})
    t.close()
    database = tmp_path / "db.lmdb"
    with Store.open(BridgeConfig(database_path=str(database))) as store, store.read() as view:
        assert view.get("agents", "build")["halted"] is True

    code, out, _ = cli(capsys, "reinstate", "build", "--reason", "fixed by hand", "--database", str(database))
    assert code == 0
    assert out.strip() == f"build reinstated in {database}: SP 0 -> 1, active again (reason: fixed by hand)."
    with Store.open(BridgeConfig(database_path=str(database))) as store, store.read() as view:
        agent = view.get("agents", "build")
        kinds = [(a["kind"], a.get("reason")) for _, a in view.scan("activities", "build\x00")]
    assert (agent["skillPoints"], agent["halted"]) == (1.0, False)
    assert kinds == [("bug", None), ("reinstate", "fixed by hand")]

    code, out, _ = cli(capsys, "reinstate", "build", "--database", str(database))
    assert code == 0 and "build is not halted (SP 1); nothing to reinstate." in out
    code, _, err = cli(capsys, "reinstate", "ghost", "--database", str(database))
    assert code == 1 and "No agent named 'ghost'" in err
    code, _, err = cli(capsys, "reinstate", "build", "--database", str(tmp_path / "none.lmdb"))
    assert code == 3 and not (tmp_path / "none.lmdb").exists()


# -- thin commands -----------------------------------------------------------------------------------------

def test_migrate_on_a_database_of_ours_has_nothing_to_do(capsys: pytest.CaptureFixture[str], database: Path) -> None:
    code, out, _ = cli(capsys, "migrate", "--database", str(database))
    assert code == 0 and "nothing to migrate there" in out


# -- demo ---------------------------------------------------------------------------------------------------

def test_demo_prints_a_ranked_report(isolated_home: Path) -> None:
    result = run_script(isolated_home, "demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Replayed" in out and "0 rejected" in out
    flat = " ".join(out.split())
    assert "For python/fastapi projects, use agent build with anthropic/claude-sonnet-4-5" in flat
    assert "For typescript/react projects, use agent build with anthropic/claude-sonnet-4-5" in flat
    assert "For rust/axum projects: not enough data yet" in flat
    # rank, stack, agent (the workflow: "build → explore" when it started subagents), model
    ranked = [match.groups() for match in re.finditer(r"^ *([12]) +(\S+) +(\S+(?: → \S+)?) +(\S+/\S+) ", out, re.M)]
    assert ranked == [
        ("1", "python/fastapi", "build → explore", "anthropic/claude-sonnet-4-5"),
        ("2", "python/fastapi", "build", "openai/gpt-5"),
        ("1", "typescript/react", "build → general", "anthropic/claude-sonnet-4-5"),
        ("2", "typescript/react", "general", "ollama/qwen3-coder:30b"),
    ]
    header = next(line for line in out.splitlines() if line.split()[:2] == ["#", "Stack"])
    assert all(column in header for column in ("Sessions", "P(best)", "interval", "Fail%", "Aband%"))
    assert "temporary, deleted now" in out
    assert not (isolated_home / ".config" / "opencode").exists()  # the demo never uses HOME's database


def contents(database: Path) -> dict[str, Any]:
    """What the report reads, without timestamps and paths (which differ between the two runs)."""
    store = Store.open(BridgeConfig(database_path=str(database)), readonly=True)
    with store, store.read() as view:
        sessions = {sid: tuple(r.get(k) for k in ("agentId", "provider", "model", "setups", "toolCalls",
                                                  "failedToolCalls", "commands", "commits", "pushes", "xpEarned"))
                    for sid, r in view.scan("sessions")}
        agents = {a: tuple(r[k] for k in ("skillPoints", "experiencePoints", "communicationScore", "totalCommits",
                                          "totalBugs", "totalPushes", "halted"))
                  for a, r in view.scan("agents")}
        grades = sorted((r["commitHash"], r["grader"], r["grade"], r["agentId"], r["model"])
                        for _, r in view.scan("communication"))
        commits = sorted((r["hash"], r["agentId"], r["sessionID"], r["model"]) for _, r in view.scan("commits"))
        kinds = sorted((r["agentId"], r["kind"]) for _, r in view.scan("activities"))
    return {"sessions": sessions, "agents": agents, "grades": grades, "commits": commits, "activities": kinds}


def test_demo_keep_matches_an_in_process_replay(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The real bridge (subprocess) and the tracking service in-process store the same numbers for
    the demo's timed stream, and the sessions are dated over six weeks that ended yesterday."""
    from datetime import datetime, timedelta, timezone

    from bridge.report.timeline import build_timeline
    from bridge.tracking.service import TrackingService

    keep = tmp_path / "kept"
    chart = tmp_path / "demo.html"
    code, out, err = cli(capsys, "demo", "--keep", str(keep), "--chart", str(chart))
    assert code == 0, err
    assert f"Database: {keep / 'agent-tracker.lmdb'}" in out and "<svg" in chart.read_text()
    assert (keep / "projects" / "shop-api" / "pyproject.toml").exists()
    flat = " ".join(out.split())
    assert "Replayed 16 recorded sessions (299 events) through the real bridge in " in flat
    assert "dated over 6 simulated weeks" in flat and "0 rejected by its rules." in flat
    assert (f"agent-tracker recommend {keep / 'projects' / 'gateway'}: Only one setup was used on rust/axum "
            "projects (answered at the exact-stack level): agent build with model google/gemini-2.5-pro (1 session; "
            "score 62.5/100, 80 % interval ") in flat
    code, out, _ = cli(capsys, "report", "--json", "--database", str(keep / "agent-tracker.lmdb"))
    through_bridge = json.loads(out)
    assert [s["stack"] for s in through_bridge["recommendations"]] == ["python/fastapi", "typescript/react", "rust/axum"]
    assert through_bridge["totals"] == {"sessions": 16, "subagentSessions": 2, "commits": 19, "grades": 30,
                                        "bugs": 3, "setups": 6, "rankedSetups": 4}
    # the signals nobody typed, as the demo's sessions left them
    setups = {(s["agent"], s["model"], s["stack"]): s for s in through_bridge["setups"]}
    web = setups[("build", "anthropic/claude-sonnet-4-5", "typescript/react")]
    assert (web["workflow"], web["revertedCommits"], web["subagents"][0]["commits"]) == ("build → general", 1, 1)
    assert setups[("general", "ollama/qwen3-coder:30b", "typescript/react")]["fixedUpCommits"] == 1
    assert setups[("build", "openai/gpt-5", "python/fastapi")]["abandonedSessions"] == 1

    files = sorted(EXAMPLES.glob("*.jsonl"))
    stream = demo.timed_stream(files, keep / "projects")
    with Store.open(BridgeConfig(database_path=str(tmp_path / "inproc.lmdb"))) as store:
        service = TrackingService(store, BridgeConfig().scoring, journal_id="inproc")
        for event in stream.events:
            service.handle(event.method, event.params)
            if service.flush_requested:
                assert not service.flush().errors
        for session_id in service.open_sessions():  # as the bridge does at shutdown
            service.handle("session.ended", {"sessionID": session_id, "reason": "shutdown"})
        assert not service.flush().errors
    assert contents(tmp_path / "inproc.lmdb") == contents(keep / "agent-tracker.lmdb")

    with Store.open(BridgeConfig(database_path=str(keep / "agent-tracker.lmdb")), readonly=True) as store:
        with store.read() as view:
            created = sorted(record["createdAt"] for _, record in view.scan("sessions"))
        timeline = build_timeline(store)
    first, last = (datetime.fromisoformat(stamp.replace("Z", "+00:00")) for stamp in (created[0], created[-1]))
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    assert first.date() == (today - timedelta(weeks=6)).date() or first.date() == (today - timedelta(weeks=6, days=1)).date()
    assert timedelta(days=40) <= last - first < timedelta(days=42) and last < datetime.now(timezone.utc)
    assert len({stamp[:10] for stamp in created}) == 16  # one session a day at most (its subagents with it)
    assert timeline.granularity == "day"
    assert sum(len(points) for points in timeline.series.values()) == 16

    readme_example_is_what_the_tool_prints(capsys, keep / "agent-tracker.lmdb", tmp_path)

    code, _, err = cli(capsys, "demo", "--keep", str(keep))
    assert code == 2 and "already holds a demo database" in err


def readme_example_is_what_the_tool_prints(capsys: pytest.CaptureFixture[str], database: Path, tmp_path: Path) -> None:
    """README's first example: its commands, run on the demo's database in a 100-column terminal,
    print exactly its lines (dates aside: the demo's are relative to today)."""
    import os
    import re

    block = (bridges.ROOT / "README.md").read_text(encoding="utf-8").split("```\n")[1]
    import tempfile

    # as short as /home/you/code/payments: the first line folds (or not) where the README's does
    payments = Path(tempfile.mkdtemp(prefix="at-")) / "code" / "payments"
    payments.mkdir(parents=True)
    (payments / "pyproject.toml").write_text('[project]\nname = "payments"\ndependencies = ["fastapi", "sqlalchemy"]\n')
    printed = []
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        for command in re.findall(r"^\$ (.*?)(?:\s+#.*)?$", block, re.M):
            argv = command.split("agent-tracker ", 1)[1].split()
            if argv[0] == "recommend":
                argv.append(str(payments))
            code, out, err = cli(capsys, *argv, "--database", str(database))
            assert code == 0, err
            printed.append(f"$ {command}\n" + out)
    finally:
        shutil.rmtree(payments.parent.parent, ignore_errors=True)
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous

    def normal(text: str) -> list[str]:
        text = re.sub(r"\d{4}-\d\d-\d\d", "<date>", text.replace(str(payments), "/home/you/code/payments"))
        lines = [line.rstrip() for line in text.strip().splitlines() if not line.startswith("$ ")]
        return [line for n, line in enumerate(lines) if line or (n and lines[n - 1])]  # one blank line, not two

    assert normal("\n".join(printed)) == normal(block)


def test_the_demo_stream_dates_every_event() -> None:
    from datetime import datetime, timezone

    from bridge.protocol.methods import EVENT_METHODS

    files = sorted(EXAMPLES.glob("*.jsonl"))
    stream = demo.timed_stream(files, Path("/p"), now=datetime(2026, 11, 26, 15, 0, tzinfo=timezone.utc))
    # a subagent's session is dated with the session that started it: not a session of its own here
    assert (stream.sessions, len(stream.events)) == (16, 299)
    assert (stream.first.isoformat(), stream.last.isoformat()) == ("2026-10-15T09:00:00+00:00",
                                                                   "2026-11-25T15:35:40+00:00")
    stamps = [event.params["at"] for event in stream.events]
    assert {event.method for event in stream.events} <= EVENT_METHODS  # no query to date
    assert stamps == sorted(stamps)  # the bridge receives them in time order
    created = [event.params for event in stream.events if event.method == "session.created"]
    assert [params["sessionID"] for params in created][:5] == [
        "ses_shop_c1", "ses_shop_g1", "ses_web_c1", "ses_web_q1", "ses_shop_c3"]
    assert created[0]["directory"] == "/p/shop-api" and created[0]["at"] == "2026-10-15T09:00:00.000Z"


def test_demo_without_examples_says_so(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    monkeypatch.setattr(demo, "examples_dir", lambda: tmp_path / "nowhere")
    code, _, err = cli(capsys, "demo")
    assert code == 1 and "The example sessions are not here" in err and "reinstall" in err
