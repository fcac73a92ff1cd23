"""Issue 26: a new user's first hour. Each test here failed before its fix: `status` of an agent
that only failed, the stack of a subfolder, relative --database paths, piped output not padded,
`report --html` into a missing folder, `migrate` of a missing path, the one CLI contract."""

from __future__ import annotations

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
