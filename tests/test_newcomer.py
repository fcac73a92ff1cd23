"""Issue 26: a new user's first hour. Each test here failed before its fix: `status` of an agent
that only failed, the stack of a subfolder, relative --database paths, piped output not padded,
`report --html` into a missing folder, `migrate` of a missing path, the one CLI contract."""

from __future__ import annotations

import re

import json
from pathlib import Path

import pytest
from test_cli import cli
from test_report import CLAUDE, Tracker, make_projects


@pytest.fixture
def reviewer_database(tmp_path: Path) -> Path:
    """A `reviewer` setup whose every tool call failed (it never earned XP), beside a build setup."""
    shop, _ = make_projects(tmp_path)
    t = Tracker(tmp_path / "db.lmdb")
    t.session("b1", shop, "build", CLAUDE, commits=[(2, 2)])
    t.send("session.created", {"sessionID": "r1", "directory": str(shop), "title": "review",
                               "agent": {"id": "reviewer", "provider": CLAUDE[0], "model": CLAUDE[1]}})
    for n in range(2):
        t.send("tool.executed", {"sessionID": "r1", "callID": f"rc{n}", "tool": "read", "success": False})
    t.send("session.deleted", {"sessionID": "r1"})
    t.flush()
    t.close()
    return tmp_path / "db.lmdb"


def test_status_of_an_agent_with_only_failed_calls(capsys: pytest.CaptureFixture[str],
                                                    reviewer_database: Path) -> None:
    code, out, err = cli(capsys, "report", "--json", "--database", str(reviewer_database))
    assert code == 0 and "reviewer" in {s["agent"] for s in json.loads(out)["setups"]}
    code, out, err = cli(capsys, "status", "reviewer", "--json", "--database", str(reviewer_database))
    assert code == 0, err
    status = json.loads(out)
    assert status["sheetRecorded"] is False and status["agent"]["agentId"] == "reviewer"
    assert [(s["agent"], s["sessions"], s["failedToolCalls"]) for s in status["setups"]] == [("reviewer", 1, 2)]
    code, out, err = cli(capsys, "status", "reviewer", "--database", str(reviewer_database))
    assert code == 0 and "reviewer has no sheet of its own yet" in " ".join(out.split())
    code, _, err = cli(capsys, "status", "nobody", "--database", str(reviewer_database))
    assert code == 1 and "No agent named 'nobody'" in err


# -- the one CLI contract ------------------------------------------------------------------------------

def _commands() -> list[str]:
    from bridge.cli import COMMANDS

    return sorted(COMMANDS)


@pytest.mark.parametrize("command", _commands())
def test_every_help_has_examples_the_contract_and_no_word_cut(command: str, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as exit_info:
        cli(capsys, command, "--help")
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert f"examples:\n  agent-tracker {command}" in text
    assert "Exit codes: 0 done, 1 failed, 2 usage error, 3 no database" in " ".join(text.split())
    assert "--no-color" in text
    assert not [line for line in text.splitlines() if line.rstrip().endswith("-") and not line.strip() == "-"
                and line.rstrip()[-2].isalpha()], text  # never "agent-" / "tracker" over two lines


# Every command that prints data, with what it needs to run on the populated database.
DATA_COMMANDS = [["status"], ["status", "build"], ["report"], ["recommend"], ["usage", "daily"], ["export"],
                 ["reinstate", "build"], ["replay"], ["migrate", "--dry-run"], ["bug", "build"]]


@pytest.mark.parametrize("command", DATA_COMMANDS, ids=lambda c: " ".join(c))
def test_json_everywhere_and_exit_3_without_a_database(command: list[str], capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    """Without a database, every data command exits 3 with one error line and one hint line, and
    with --json says so as JSON too (replay and migrate write a new one, bug needs an agent)."""
    from bridge.cli.parser import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001
    assert "--json" in sub.choices[command[0]].format_help()  # type: ignore[attr-defined]
    if command[0] in ("replay", "migrate"):
        return
    missing = tmp_path / "none.lmdb"
    code, out, err = cli(capsys, *command, "--json", "--database", str(missing))
    assert code == 3, err
    assert err.splitlines()[0] == f"agent-tracker: No agent-tracker database at {missing}."
    assert len(err.splitlines()) == 2 and err.splitlines()[1].startswith("hint: ")
    assert json.loads(out)["exitCode"] == 3 and json.loads(out)["hint"].startswith("It is created")


@pytest.mark.parametrize("command", [["install-plugin", "--dry-run"], ["uninstall-plugin"], ["demo"]])
def test_json_on_the_commands_that_change_things(command: list[str], capsys: pytest.CaptureFixture[str],
                                                 isolated_home: Path) -> None:
    code, out, err = cli(capsys, *command, "--json")
    assert code == 0, err
    wire = json.loads(out)
    if command[0] == "demo":
        assert wire["sessions"] == 16 and wire["rejected"] == 0 and wire["report"]["totals"]["sessions"] == 16
    else:
        assert wire["configDir"] == str(isolated_home / ".config" / "opencode")


def test_no_color_and_NO_COLOR(reviewer_database: Path) -> None:
    import re
    import subprocess
    import sys

    from support import bridges

    colour = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7]|4[0-8])[;m]")  # SGR colours (bold stays)
    base = [sys.executable, "-m", "bridge", "report", "--min-sessions", "1", "--database", str(reviewer_database)]
    env = {**bridges.bridge_env(reviewer_database.parent), "FORCE_COLOR": "1", "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    colored = subprocess.run(base, capture_output=True, text=True, env=env, timeout=60)
    assert colour.search(colored.stdout)
    for extra, variables in (([ "--no-color"], {}), ([], {"NO_COLOR": "1"})):
        plain = subprocess.run(base + extra, capture_output=True, text=True, env={**env, **variables}, timeout=60)
        assert plain.returncode == 0 and not colour.search(plain.stdout), extra


def test_errors_fold_between_words_in_a_narrow_terminal(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    from bridge.cli.common import print_error

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("COLUMNS", "40")
    print_error(f"No agent-tracker database at {tmp_path}/x.lmdb. It is created when OpenCode first runs "
                f"the plugin (agent-tracker install-plugin).")
    err = capsys.readouterr().err
    words = " ".join(err.split())
    assert "agent-tracker install-plugin" in words and "agent-tracker: No agent-tracker database" in words
    assert all(len(line) <= 40 or " " not in line.strip() for line in err.splitlines())
    assert err.splitlines()[0] == "agent-tracker: No agent-tracker database"


def test_recommend_in_a_subfolder_walks_up_to_the_project_root(capsys: pytest.CaptureFixture[str],
                                                               reviewer_database: Path, tmp_path: Path) -> None:
    """Item 13: proj/src/payments under a FastAPI pyproject.toml is a python/fastapi project; a
    git root above a manifest-less subfolder ends the walk as git does."""
    project = tmp_path / "proj"
    deep = project / "src" / "payments"
    deep.mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "p"\ndependencies = ["fastapi"]\n')
    code, out, err = cli(capsys, "recommend", str(deep), "--json", "--database", str(reviewer_database))
    assert code == 0, err
    advice = json.loads(out)
    assert (advice["stack"], advice["projectRoot"]) == ("python/fastapi", str(project))
    assert advice["lines"][0] == f"{deep}: a python/fastapi project (its root: {project})."
    from bridge.tracking.project_root import project_root

    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "lib").mkdir()
    assert project_root(repo / "lib") == repo
    loose = tmp_path / "loose" / "folder"
    loose.mkdir(parents=True)
    assert project_root(loose) == loose


def test_report_to_a_file_prints_its_path_not_the_report(capsys: pytest.CaptureFixture[str],
                                                         reviewer_database: Path, tmp_path: Path) -> None:
    """Items 4 and 15: `report --html FILE` prints where the page is, not the whole report again;
    a folder that does not exist is an error, not a new tree of folders."""
    page = tmp_path / "r.html"
    code, out, err = cli(capsys, "report", "--html", str(page), "--database", str(reviewer_database))
    assert code == 0, err
    assert out == f"HTML report: {page}\n" and page.is_file()
    missing = tmp_path / "no" / "such" / "dir" / "r.html"
    code, out, err = cli(capsys, "report", "--html", str(missing), "--database", str(reviewer_database))
    assert code == 2 and err.splitlines()[0] == f"agent-tracker: The folder {missing.parent} does not exist."
    assert not (tmp_path / "no").exists()


def test_piped_output_is_not_padded(reviewer_database: Path) -> None:
    """Item 4: redirected output has no trailing spaces (rich pads tables to 200 columns)."""
    import subprocess
    import sys

    from support import bridges

    env = bridges.bridge_env(reviewer_database.parent)
    env.pop("COLUMNS", None)
    for command in (["report"], ["status"], ["usage", "daily"]):
        result = subprocess.run([sys.executable, "-m", "bridge", *command, "--database", str(reviewer_database)],
                                capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        assert [line for line in result.stdout.splitlines() if line != line.rstrip()] == [], command


def test_migrate_of_a_path_that_does_not_exist(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Item 15: not "is not from the older plugin" for a path that is not there at all."""
    code, _, err = cli(capsys, "migrate", str(tmp_path / "nope"), "--database", str(tmp_path / "db.lmdb"))
    assert code == 1 and err.splitlines() == [f"agent-tracker: Nothing to migrate at {tmp_path / 'nope'}: no such "
                                              f"file or folder."]
    code, _, err = cli(capsys, "migrate", "--database", str(tmp_path / "none.lmdb"))
    assert code == 3 and err.splitlines()[0] == (f"agent-tracker: There is no database at {tmp_path / 'none.lmdb'}, "
                                                 f"so nothing to migrate there.")


def test_uninstall_leaves_no_empty_plugin_list(isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Item 16: install then uninstall gives back the user's config, not `"plugin": []`."""
    config = isolated_home / ".config" / "opencode"
    config.mkdir(parents=True)
    original = '{\n  "$schema": "https://opencode.ai/config.json",\n  "model": "openai/gpt-5"\n}\n'
    (config / "opencode.json").write_text(original)
    assert cli(capsys, "install-plugin")[0] == 0
    assert '"plugin"' in (config / "opencode.json").read_text()
    assert cli(capsys, "uninstall-plugin")[0] == 0
    assert (config / "opencode.json").read_text() == original


def test_export_over_a_hard_link_keeps_it(capsys: pytest.CaptureFixture[str], reviewer_database: Path,
                                          tmp_path: Path) -> None:
    """Item 16: both names of a hard-linked export file see the new export."""
    target, other = tmp_path / "export.json", tmp_path / "other-name.json"
    target.write_text("old\n")
    other.hardlink_to(target)
    code, _, err = cli(capsys, "export", "--output", str(target), "--database", str(reviewer_database))
    assert code == 0, err
    assert other.read_text() == target.read_text() and json.loads(other.read_text())["tables"]["sessions"]
    assert target.stat().st_ino == other.stat().st_ino


def test_scales_are_stated(capsys: pytest.CaptureFixture[str], reviewer_database: Path, tmp_path: Path) -> None:
    """Item 8: a score is out of 100, a grade on -1..5, no grade is said in words; big numbers
    have separators."""
    from bridge.report.render import tokens_text
    from bridge.wording import grade_phrase, score_phrase

    assert score_phrase(73.66) == "score 73.7/100"
    assert grade_phrase("user", 4.0, 3) == "mean user grade 4.00 on -1..5 (3 grades)"
    assert grade_phrase("user", None, 0) == "no user grades yet"
    assert tokens_text(5_965_060_000) == "5.97B" and tokens_text(1_100_000) == "1.10M"
    code, out, _ = cli(capsys, "recommend", str(tmp_path), "--min-sessions", "1", "--database", str(reviewer_database))
    flat = " ".join(out.split())
    # (issue 23's answer: "P(best) 0.68 over 1 session; score 62.5/100, 80 % interval 43-66")
    assert code == 0 and re.search(r"over 1 session; score \d+\.\d/100, 80 % interval \d+-\d+", flat), flat
    assert "on -1..5 (1 grade)" in flat and "grade -" not in flat


def test_replay_of_many_files_ends_with_the_totals(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Item 9: one line for all the files that replayed cleanly, the total rejected in it; a file
    with problems keeps its own line."""
    from support import bridges

    files = sorted((bridges.ROOT / "examples" / "sessions").glob("*.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"dir": "in", "msg": {"jsonrpc": "2.0", "method": "grade", "params": {"grade": 7}}}\nnot json\n')
    code, out, err = cli(capsys, "replay", "--database", str(tmp_path / "r.lmdb"), *map(str, files), str(bad))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{bad}: 0 events replayed, 1 rejected, 1 lines skipped"
    assert lines[-1] == f"Replayed 299 events from 6 files into {tmp_path / 'r.lmdb'}: 1 rejected, 83 lines skipped."
    assert not any(str(f) in out for f in files)


def test_a_relative_database_path_that_is_missing_says_where_it_looked(capsys: pytest.CaptureFixture[str],
                                                                       reviewer_database: Path, isolated_home: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 14: relative --database paths resolve against the home directory (the rule stays);
    the error says so and names the file of that name in the current folder."""
    monkeypatch.chdir(reviewer_database.parent.parent)
    relative = f"{reviewer_database.parent.name}/{reviewer_database.name}"
    code, out, err = cli(capsys, "report", "--database", relative)
    assert code == 3
    assert err.splitlines() == [
        f"agent-tracker: No agent-tracker database at {isolated_home / relative} (a relative --database is resolved "
        f"against the home directory, not the current folder).",
        f"hint: There is one at {reviewer_database}: pass --database {reviewer_database}."]
