"""The report fits the terminal: at 80, 100, 120 and 200 columns no line is wider, and rank, agent,
model and score are whole on every setup row. Also --wide, the agents table, --version and the help."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from test_cli import cli, run_script
from test_report import CLAUDE, Tracker, make_projects, populate

from bridge.report.build import build_report
from bridge.report.render import render_rich

LONG = ("openrouter", "meta-llama/llama-3.1-405b-instruct")  # a long model name must stay whole too


@pytest.fixture
def report(tmp_path: Path):
    tracker, shop, _ = populate(tmp_path)
    for n in range(3):
        tracker.session(f"long{n}", shop, "review", LONG, commits=[(2, 2)])
    tracker.flush()
    yield build_report(tracker.store)
    tracker.close()


def rendered(report, width: int, **options) -> str:
    buffer = io.StringIO()
    render_rich(report, Console(file=buffer, width=width, color_system=None, force_terminal=False), **options)
    return buffer.getvalue()


def key_cells(row) -> tuple[str, str, str, str]:
    return (str(row.rank) if row.ranked else "-", row.agent, row.model, f"{row.score:.1f}" + ("" if row.ranked else "*"))


def probability_cell(row) -> str:
    return f"{row.probability_best:.2f}"


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_every_line_fits_and_the_key_columns_are_whole(report, width: int) -> None:
    text = rendered(report, width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert len(report.setups) == 6
    for row in report.setups:
        rank, agent, model, score = key_cells(row)
        # the row's line: it starts with its rank and ends with its sessions, P(best) and score, agent and
        # model whole in between; at 80 columns the 45-character model name folds onto a second line
        # (its two parts joined make it whole) so that sessions and P(best) stay visible.
        matching = [(n, line.split()) for n, line in enumerate(lines)
                    if line.split()[:1] == [rank] and line.split()[-1:] == [score]
                    and probability_cell(row) in line.split() and agent in line.split()]
        assert len(matching) == 1, (row.setup, text)
        n, cells = matching[0]
        assert cells[cells.index(probability_cell(row)) - 1] == str(row.sessions) or width > 80
        if model not in cells:
            assert (width, model) == (80, "openrouter/meta-llama/llama-3.1-405b-instruct"), text
            assert cells[2] + lines[n + 1].split()[0] == model
    assert "…" not in text


def test_fewer_columns_when_narrow_all_when_wide(report) -> None:
    def header(width: int, **options) -> str:
        return next(line for line in rendered(report, width, **options).splitlines() if line.lstrip().startswith("#"))

    # 80: the long model name leaves no room for a stack column: each stack gets its own table.
    assert header(80).split() == ["#", "Agent", "Model", "Sessions", "P(best)", "Score"]
    narrow = rendered(report, 80).splitlines()
    assert [line.strip() for line in narrow if line.strip() in ("python/fastapi", "typescript/react")] == [
        "python/fastapi", "typescript/react"]
    assert "Not shown at this width: 80% interval, User grade, Commits, Bugs/C, Agent grade, C/S, Last used, XP/S, " \
           "5s, -1s, Aband%, Fail%, Fixup%, Reverts (--wide shows them" in " ".join(rendered(report, 80).split())
    # 100: P(best) and Sessions keep their place; the stack goes to per-stack tables again.
    assert header(100).split() == ["#", "Agent", "Model", "Sessions", "P(best)", "interval", "Score"]
    assert header(200).split() == ["#", "Stack", "Agent", "Model", "Sessions", "Commits", "C/S", "XP/S", "grade",
                                   "grade", "5s", "-1s", "Bugs/C", "Fail%", "Aband%", "Last", "used", "P(best)",
                                   "interval", "Score"]
    assert "Not shown at this width: Fixup%, Reverts" in " ".join(rendered(report, 200).split())
    wide = rendered(report, 80, wide=True)
    assert header(80, wide=True).split() == ["#", "Stack", "Agent", "Model", "Sessions", "Commits", "C/S", "XP/S",
                                             "grade", "grade", "5s", "-1s", "Bugs/C", "Fail%", "Aband%", "Fixup%",
                                             "Reverts", "Last", "used", "P(best)", "interval", "Score"]
    assert max(len(line) for line in wide.splitlines()) > 80  # wider than the console: the terminal wraps
    assert "Not shown" not in wide


def test_agents_have_their_own_table_not_a_column_of_every_setup(report) -> None:
    text = rendered(report, 200)
    setups_part, agents_part = text.split("Agents: SP skill points")
    assert " SP " not in setups_part and " CS " not in setups_part
    # the rows: nine cells (the header has ten words: "Last update")
    agent_rows = {cells[0]: cells for cells in map(str.split, agents_part.splitlines()) if len(cells) == 9}
    assert set(agent_rows) == {"build", "general", "plan", "review"}
    build = next(sheet for sheet in report.agents if sheet["agentId"] == "build")
    assert agent_rows["build"][1:4] == [f"{build['skillPoints']:g}", f"{build['experiencePoints']:g}",
                                        f"{build['communicationScore']:g}"]
    assert agent_rows["build"][7] == "active"


def test_a_halted_agent_shows_in_the_agents_table(tmp_path: Path) -> None:
    shop, _ = make_projects(tmp_path)
    t = Tracker(tmp_path / "db.lmdb")
    t.session("s", shop, "build", CLAUDE, commits=[(2, 2)], delete=False)
    t.send("bug.reported", {"sessionID": "s", "description": "broke it"})
    t.flush()
    text = rendered(build_report(t.store), 100)
    (row,) = [line.split() for line in text.split("Agents: SP")[1].splitlines() if line.split()[:1] == ["build"]]
    assert row[1] == "0" and row[7] == "halted"
    t.close()


def test_the_command_honours_the_terminal_width(tmp_path: Path, isolated_home: Path) -> None:
    tracker, _, _ = populate(tmp_path)
    tracker.close()
    for columns in ("80", "120"):
        result = run_script(isolated_home, "report", "--database", str(tmp_path / "db.lmdb"), COLUMNS=columns)
        assert result.returncode == 0, result.stderr
        assert max(len(line) for line in result.stdout.splitlines()) <= int(columns)
    result = run_script(isolated_home, "report", "--database", str(tmp_path / "db.lmdb"), "--wide", COLUMNS="80")
    assert "XP/S" in result.stdout


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    from bridge import __version__

    with pytest.raises(SystemExit) as exit_info:
        cli(capsys, "--version")
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"agent-tracker {__version__}\n"
    with pytest.raises(SystemExit):
        cli(capsys, "--help")
    text = capsys.readouterr().out
    description = text.split("\n\n")[1]
    assert description.startswith("agent-tracker: which AI coding-agent setup (OpenCode agent, model, project stack)")
    assert "`" not in text
    assert "recommend" in text and "report" in text and "demo" in text
    with pytest.raises(SystemExit):
        cli(capsys, "report", "--help")
    flat = " ".join(capsys.readouterr().out.split())
    # --since says what it takes, and takes what it says (test_report: test_since_forms)
    assert ("--since WHEN only records from WHEN on: a date (2026-10-01), an ISO timestamp (2026-10-01T14:00Z, UTC "
            "unless it says) or Nd (N days ago: 30d)") in flat
    assert "--until WHEN" in flat and "--agent AGENT" in flat and "--model MODEL" in flat and "--wide" in flat


@pytest.mark.parametrize("width", [80, 100, 120])
def test_columns_are_shown_in_priority_order_only(report, width: int, monkeypatch: pytest.MonkeyPatch,
                                                   isolated_home: Path, tmp_path: Path) -> None:
    """Issue 26, item 2: rank, agent, model, sessions and score at every width; then the others in
    priority order, never a later one without every earlier one (the stack may become per-stack tables)."""
    from bridge.report.render import KEY_COLUMNS, PRIORITY, choose_columns

    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    keys = choose_columns(report, console, width)
    assert set(KEY_COLUMNS) <= set(keys)
    extra = [key for key in PRIORITY if key in keys and key != "stack"]
    ordered = [key for key in PRIORITY if key != "stack" and key not in ("costPerSession", "costPerCommit",
               "tokensPerCommit", "timePerSession", "value")]  # no usage in this report
    assert extra == ordered[:len(extra)]
    assert "Sessions" in rendered(report, width)
