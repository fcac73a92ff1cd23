"""Hostile input, round 3 (issue 27): names, repositories, files and imports that crashed, hung or
injected. Each test reproduces one finding against the real parts (the real TrackingService on a
real LMDB, the real CLI, the real bridge or CLI as a subprocess where a hang or a traceback is the
finding) and checks the rule that fixes it:

* one place makes untrusted names display text (bridge.display): controls and bidi characters
  escaped, newlines folded, long names cut, rich markup and matplotlib math never interpreted,
  CSV cells that a spreadsheet would run prefixed with ``'``; ``--json`` keeps every name whole;
* one bounded reader of project files (bridge.safe_read) and stacks recorded when a session
  starts: the report never reads a project folder;
* bounded usage values (a sum cannot reach inf); one import at a time per database; a bad row
  of OpenCode's database skipped, counted and named.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.tracking import FULL_HASH, ServiceHarness, make_harness, open_store

from bridge.cli import main
from bridge.display import ELLIPSIS, NAME_LIMIT, display_name
from reliability import ROOT

pytestmark = pytest.mark.reliability

# What must never reach a terminal from data: C0 (but \n), DEL, C1, bidi and other format controls.
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff"
                     "\u2028\u2029\ud800-\udfff]")
HOSTILE_AGENTS = ["[/]x", "[bold red]boom", "esc\x1b[2J\x1b]0;owned\x07", "rtl\u202etxt.exe", "c1\x9b31m",
                  "two\nlines │ fake │ row", ":smile: $x$"]
LONG_MODEL = "m" * 10_000
_SESSION_NUMBERS = itertools.count()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sessions_of(harness: ServiceHarness, folder: Path, agents: list[str], model: str = "claude",
                sessions: int = 1) -> list[str]:
    """``sessions`` finished sessions per agent in ``folder``, through the tracking rules; their ids."""
    ids = []
    for agent in agents:
        for number in range(sessions):
            session_id = f"s{next(_SESSION_NUMBERS)}"
            ids.append(session_id)
            harness.send("session.created", {"sessionID": session_id, "directory": str(folder),
                                              "agent": {"id": agent, "model": model, "provider": "p"}})
            harness.send("session.deleted", {"sessionID": session_id})
    harness.service.flush()
    return ids


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "db.lmdb"


def harness_for(database: Path, folder: Path) -> ServiceHarness:
    return make_harness(open_store(database), directory=str(folder))


# -- 1. one hostile repository ---------------------------------------------------------------------------------

def test_a_package_json_nested_200000_deep_breaks_neither_recommend_nor_any_report(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, database: Path, folder: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / "package.json").write_text("[" * 200_000 + "]" * 200_000)
    harness = harness_for(database, folder)
    sessions_of(harness, folder, ["build"], sessions=3)
    sessions_of(harness, hostile, ["plan"])  # a session there: its stack is recorded now, once
    with harness.store.read() as view:
        assert view.get("projects", str(hostile))["stack"] == "javascript"
    harness.store.close()
    # The report reads only recorded stacks: from anywhere, every project.
    code, out, err = cli(capsys, "report", "--json", "--database", str(database))
    assert code == 0, err
    assert {(row["agent"], row["stack"]) for row in json.loads(out)["setups"]} == {("build", "unknown"),
                                                                                    ("plan", "javascript")}
    monkeypatch.chdir(hostile)
    code, out, err = cli(capsys, "recommend", "--database", str(database))
    assert (code, err) == (0, "") and out.startswith(f"{hostile}: a javascript project.")
    # A folder nobody had a session in is read now, by the bounded reader: no recursion either.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "package.json").write_text('{"dependencies": ' * 50_000 + "{}" + "}" * 50_000)
    code, out, err = cli(capsys, "recommend", str(fresh), "--database", str(database))
    assert (code, err) == (0, "") and out.startswith(f"{fresh}: a javascript project.")


def test_a_symlink_loop_or_a_deleted_folder_is_one_sentence(tmp_path: Path, database: Path, folder: Path) -> None:
    harness = harness_for(database, folder)
    sessions_of(harness, folder, ["build"])
    harness.store.close()
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop")
    gone = tmp_path / "gone"
    gone.mkdir()
    script = ("import os, sys; os.chdir(sys.argv[1]); sys.argv[2] == 'delete' and os.rmdir(sys.argv[1]); "
              "from bridge.cli import main; sys.exit(main(sys.argv[3:]))")
    for cwd, argv in ((tmp_path, [str(tmp_path), "keep", "recommend", str(loop)]),
                      (gone, [str(gone), "delete", "recommend"])):
        proc = subprocess.run([sys.executable, "-c", script, *argv, "--database", str(database)],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1, proc
        assert proc.stdout == ""
        if cwd == gone:
            assert "the current folder no longer exists" in proc.stderr
            assert "standard output" not in proc.stderr
        else:
            assert proc.stderr.startswith(f"agent-tracker: Cannot use {loop}: ")


def test_a_project_of_fifos_and_loops_is_classified_without_blocking(tmp_path: Path) -> None:
    from bridge.tracking.stack import classify

    project = tmp_path / "odd"
    project.mkdir()
    os.mkfifo(project / "package.json")  # reading it would wait forever for a writer
    (project / "AGENTS.md").symlink_to(project / "AGENTS.md")
    (project / "Cargo.toml").write_text('[dependencies]\naxum = "1"\n')
    assert classify(project).name == "rust/axum"
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    found = classify(loop)
    assert (found.name, found.refused) == ("unknown", f"{loop} is a symbolic link loop: its stack is not classified.")


# -- 2, 3. markup, escapes, look-alikes, long names -----------------------------------------------------------

def test_names_are_display_text_in_every_terminal_output(capsys: pytest.CaptureFixture[str], database: Path,
                                                         folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    harness = harness_for(database, folder)
    ids = sessions_of(harness, folder, HOSTILE_AGENTS, sessions=3)
    sessions_of(harness, folder, ["long"], model=LONG_MODEL)
    for agent, session_id in zip(HOSTILE_AGENTS[:3], ids[::3]):  # agent records: `status`, the agents table
        harness.send("bug.reported", {"agentId": agent, "sessionID": session_id,
                                      "description": "\x1b]8;;http://evil\x07click\x1b]8;;\x07"})
    harness.service.flush()
    harness.store.close()
    monkeypatch.chdir(folder)
    outputs = {}
    for argv in (["report"], ["report", "--wide"], ["status"], ["status", "[/]x"], ["recommend"],
                 ["status", "nobody"], ["report", "--agent", "no\x1bbody"], ["reinstate", "[/]x"],
                 ["bug", "[bold red]boom", "--reason", "\x1b[31mred"]):
        code, out, err = cli(capsys, *argv, "--database", str(database))
        assert code in (0, 1), (argv, err)
        outputs[" ".join(argv)] = out + err
    for command, text in outputs.items():
        assert CONTROL.search(text) is None, (command, CONTROL.search(text))
        assert LONG_MODEL not in text, command  # cut with an ellipsis: --json has it whole
    report = outputs["report --wide"]
    assert "[/]x" in report and "[bold red]boom" in report and "rtl\\u202etxt.exe" in report
    assert "esc\\x1b[2J\\x1b]0;owned\\x07" in report and "c1\\x9b31m" in report
    # A name with a newline stays on its row: no line starts with the text after its newline.
    assert not any(line.lstrip().startswith("lines │ fake") for line in report.splitlines())
    assert "two↵lines │ fake │ row" in report
    assert display_name(LONG_MODEL).endswith(ELLIPSIS) and len(display_name(LONG_MODEL)) == NAME_LIMIT
    assert "Known agents: [/]x, [bold red]boom, esc\\x1b[2J" in outputs["status nobody"]
    assert "no\\x1bbody" in outputs["report --agent no\x1bbody"]
    code, out, err = cli(capsys, "report", "--json", "--database", str(database))
    assert {row["model"] for row in json.loads(out)["setups"]} == {"p/claude", f"p/{LONG_MODEL}"}
    assert set(HOSTILE_AGENTS) <= {row["agent"] for row in json.loads(out)["setups"]}


def test_nul_in_a_text_field_is_replaced_at_intake_and_refused_in_an_id(database: Path, folder: Path) -> None:
    from bridge.protocol.structure import InvalidParams

    harness = harness_for(database, folder)
    harness.send("session.created", {"sessionID": "s1", "directory": str(folder), "title": "t\x00itle",
                                     "agent": {"id": "build", "model": "m\x00odel", "provider": "p\x00"}})
    with pytest.raises(InvalidParams, match="without NUL characters"):
        harness.send("session.created", {"sessionID": "s2", "agent": {"id": "bu\x00ild"}})
    harness.service.flush()
    stored = harness.stored("sessions", "s1")
    assert (stored["title"], stored["model"], stored["provider"]) == ("t\ufffditle", "m\ufffdodel", "p\ufffd")
    harness.store.close()


# -- 4. matplotlib math text ----------------------------------------------------------------------------------

def test_math_text_in_a_name_draws_the_chart_and_the_page(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                          database: Path, folder: Path) -> None:
    pytest.importorskip("matplotlib")
    harness = harness_for(database, folder)
    sessions_of(harness, folder, ["build", "plan"], model="gpt-$\\foo{$", sessions=3)
    sessions_of(harness, folder, [HOSTILE_AGENTS[2]], model="$\\frac{a}{", sessions=3)
    harness.store.close()
    page, chart = tmp_path / "report.html", tmp_path / "chart.png"
    code, out, err = cli(capsys, "report", "--html", str(page), "--chart", str(chart), "--database", str(database))
    assert code == 0, err
    text = page.read_text(encoding="utf-8")
    assert "gpt-$\\foo{$" in text and "<svg" in text and CONTROL.search(text.replace("\n", " ")) is None
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- 5. CSV formula injection ---------------------------------------------------------------------------------

def test_csv_cells_that_a_spreadsheet_would_run_are_prefixed(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                             database: Path, folder: Path) -> None:
    harness = harness_for(database, folder)
    (session_id,) = sessions_of(harness, folder, ["=cmd|'/C calc'!A0"])
    harness.send("commit.completed", {"commitHash": FULL_HASH, "projectPath": str(folder), "sessionID": session_id,
                                      "taskDescription": '=HYPERLINK("http://evil","click")'})
    harness.send("grade", {"grade": -1, "grader": "user", "sessionID": session_id, "reason": "+1+cmd"})
    harness.send("retrospective.recorded", {"sessionID": session_id, "summary": "@SUM(A1:A9)",
                                            "wentWell": ["-2+3"], "author": "user"})
    harness.send("bug.reported", {"sessionID": session_id, "description": "\t=1+1\rrow"})
    harness.service.flush()
    harness.store.close()
    code, out, err = cli(capsys, "export", "--format", "csv", "--database", str(database))
    assert code == 0, err
    folder_out = tmp_path / "csv"
    code, _, err = cli(capsys, "export", "--format", "csv", "-o", str(folder_out), "--database", str(database))
    assert code == 0, err
    import csv
    import io

    texts = [out] + [path.read_bytes().decode("utf-8") for path in sorted(folder_out.glob("*.csv"))]
    cells = [cell for text in texts for row in csv.reader(io.StringIO(text)) for cell in row]
    assert cells and [cell for cell in cells if cell[:1] in ("=", "+", "@", "\t", "\r")] == []
    # "-" starts only numbers (a grade of -1 stays a number) or prefixed text
    assert {cell for cell in cells if cell.startswith("-")} <= {"-1", "-1.0"}
    for shown in ("'=HYPERLINK(\"http://evil\",\"click\")", "'+1+cmd", "'@SUM(A1:A9)", "'\t=1+1\rrow",
                  "'=cmd|'/C calc'!A0"):
        assert shown in cells, shown
    # A CR inside a cell is quoted (RFC 4180 line ends): it never starts a row of its own.
    assert all(text.endswith("\r\n") and '"\'\t=1+1\rrow"' in text for text in texts if "bug" in text)


# -- 6. install-plugin and a FIFO or a symlink loop -----------------------------------------------------------

@pytest.mark.parametrize("make", ["fifo", "loop"])
def test_install_plugin_neither_hangs_nor_half_writes(tmp_path: Path, make: str) -> None:
    config = tmp_path / "config" / "opencode"
    config.mkdir(parents=True)
    target = config / "opencode.json"
    if make == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to(config / "other.json")
        (config / "other.json").symlink_to(target)
    before = sorted(path.name for path in config.iterdir())
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    proc = subprocess.run([sys.executable, "-m", "bridge", "install-plugin"], capture_output=True, text=True,
                          timeout=30, cwd=ROOT, env=env)
    reason = "is a FIFO (named pipe), not a regular file" if make == "fifo" else "is a symbolic link loop"
    assert proc.returncode == 1 and proc.stderr == (
        f"agent-tracker: {target} {reason}; nothing was changed: remove or fix it and run the command again\n")
    assert sorted(path.name for path in config.iterdir()) == before  # no package.json, no plugin/


# -- 7, 8. import-opencode: two at once, a bad row ------------------------------------------------------------

def _counts(database: Path) -> dict[str, int]:
    from reliability import read_db

    return {name: len(records) for name, records in read_db(database).items()
            if name in ("sessions", "activities", "usage", "commits")}


def test_two_imports_at_once_store_what_one_stores(tmp_path: Path) -> None:
    source = tmp_path / "opencode.db"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate_opencode_db.py"), "--output", str(source),
                    "--sessions", "1000", "--parts", "8000"], check=True, capture_output=True, timeout=120)
    env = {**os.environ, "AGENT_TRACKER_IMPORT_WORKERS": "1", "HOME": str(tmp_path)}
    results = {}
    for name, copies in (("one", 1), ("two", 2)):
        database = tmp_path / f"{name}.lmdb"
        argv = [sys.executable, "-m", "bridge", "import-opencode", "--db", str(source), "--database",
                str(database), "--json"]
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                  env=env) for _ in range(copies)]
        for proc in procs:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err
        results[name] = _counts(database)
    assert results["one"]["sessions"] == 1000 and results["one"]["activities"] == 1000
    assert results["two"] == results["one"]


def test_a_session_row_with_text_in_time_created_is_skipped_counted_and_named(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "opencode.db"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate_opencode_db.py"), "--output", str(source),
                    "--sessions", "20", "--parts", "200"], check=True, capture_output=True, timeout=120)
    connection = sqlite3.connect(source)
    bad = [row[0] for row in connection.execute("SELECT id FROM session ORDER BY time_created LIMIT 2")]
    connection.execute("UPDATE session SET time_created = 'yesterday' WHERE id = ?", (bad[0],))
    connection.execute("UPDATE part SET time_created = 'soon' WHERE session_id = ?", (bad[1],))
    connection.commit()
    connection.close()
    database = tmp_path / "at.lmdb"
    code, out, err = cli(capsys, "import-opencode", "--db", str(source), "--database", str(database), "--json")
    result = json.loads(out)
    assert code == 1 and "Traceback" not in err
    assert result["sessions"]["new"] == 19 and result["skippedRows"] == 1
    assert any(problem.startswith(f"session {bad[0]!r}: cannot be read") for problem in result["problems"])
    assert _counts(database)["sessions"] >= 18
    code, out, err = cli(capsys, "import-opencode", "--db", str(source), "--database", str(database))
    assert code == 1 and "Skipped: 1 row of OpenCode's database" in out


# -- 9, 11. bounded sums --------------------------------------------------------------------------------------

def test_costs_that_would_sum_to_inf_are_refused_live_and_in_replay(capsys: pytest.CaptureFixture[str],
                                                                    tmp_path: Path, database: Path,
                                                                    folder: Path) -> None:
    from bridge.protocol.structure import InvalidParams

    harness = harness_for(database, folder)
    (session_id,) = sessions_of(harness, folder, ["build"])
    usage = {"sessionID": session_id, "tokens": {"input": 10}, "durationMs": 5}
    harness.send("usage.recorded", {**usage, "messageID": "ok", "cost": 0.25})
    for message in ("m1", "m2"):
        with pytest.raises(InvalidParams, match=r"params\.cost must be a finite number from 0 to 1,000,000"):
            harness.send("usage.recorded", {**usage, "messageID": message, "cost": 1e308})
    harness.service.flush()
    harness.store.close()
    code, out, err = cli(capsys, "report", "--database", str(database), "--wide")
    assert code == 0 and "inf" not in out and "0.25 $" in out
    # The same events through `replay`: refused the same way, the same total.
    recording = tmp_path / "events.jsonl"
    lines = [{"method": "session.created", "params": {"sessionID": "r1", "directory": str(folder),
                                                      "agent": {"id": "build", "model": "claude", "provider": "p"}}},
             {"method": "usage.recorded", "params": {**usage, "sessionID": "r1", "messageID": "ok", "cost": 0.25}},
             {"method": "usage.recorded", "params": {**usage, "sessionID": "r1", "messageID": "m1", "cost": 1e308}},
             {"method": "usage.recorded", "params": {**usage, "sessionID": "r1", "messageID": "m2", "cost": 1e308}}]
    recording.write_text("".join(json.dumps({"dir": "in", "msg": {"jsonrpc": "2.0", **line}}) + "\n"
                                 for line in lines))
    replayed = tmp_path / "replayed.lmdb"
    code, out, err = cli(capsys, "replay", str(recording), "--database", str(replayed), "--json")
    assert json.loads(out)["files"][0]["rejected"] == 2, out
    code, out, err = cli(capsys, "report", "--json", "--database", str(replayed))
    assert json.loads(out)["usage"]["cost"] == 0.25


# -- 10. lone surrogates and non-UTF-8 names ------------------------------------------------------------------

@pytest.mark.parametrize("command", ["bug", "reinstate", "status"])
def test_a_non_utf8_agent_name_on_the_command_line_is_one_sentence(tmp_path: Path, database: Path, folder: Path,
                                                                   command: str) -> None:
    harness = harness_for(database, folder)
    harness.send("bug.reported", {"agentId": "build"})
    harness.service.flush()
    harness.store.close()
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run([os.fsencode(sys.executable), b"-m", b"bridge", command.encode(), b"bu\xffild",
                           b"--database", os.fsencode(database)], capture_output=True, timeout=60, cwd=ROOT, env=env)
    stderr = proc.stderr.decode("utf-8")
    assert (proc.returncode, proc.stdout) == (1, b"") and "Traceback" not in stderr
    # the CLI's contract: the error on one line, what there is on its hint line
    assert stderr == f"agent-tracker: No agent named 'bu\\udcffild' in {database}.\nhint: Known agents: build.\n"
