"""Issue 26: `agent-tracker usage daily|weekly|monthly|session`: spend per period as ccusage shows
it (cost, input/output/cache tokens), plus sessions, commits, grades and bugs, --breakdown per
model, --project, --since/--until and --timezone. A real TrackingService fills the database; every
figure below is worked out by hand from the events."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from test_cli import cli
from test_report import CLAUDE, GPT, Tracker, make_projects

from bridge.report.periods import TimeZone, period_of, window
from bridge.report.spending import build_usage
from bridge.report.spending_render import render_usage

HAIKU = ("anthropic", "claude-haiku-4-5")


def spend(t: Tracker, sid: str, message: str, cost: float, agent: str, model: tuple[str, str],
          **tokens: int) -> None:
    t.send("usage.recorded", {"sessionID": sid, "messageID": message, "cost": cost, "tokens": tokens,
                              "durationMs": 1000, "agent": {"id": agent, "provider": model[0], "model": model[1]}})


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """s1 (shop, claude) late on Oct 1 UTC with a commit graded 5 and a subagent on haiku; s2
    (shop, gpt-5) on Oct 2; s3 (web, claude) on Oct 9 with a bug."""
    shop, web = make_projects(tmp_path)
    t = Tracker(tmp_path / "db.lmdb")
    t.at("2026-10-01T22:30:00.000Z")
    t.session("s1", shop, "build", CLAUDE, tools=0, commits=[(None, 5)], delete=False)
    spend(t, "s1", "m1", 0.10, "build", CLAUDE, input=100, output=10, cacheRead=1000, cacheWrite=50)
    t.send("session.created", {"sessionID": "s1-sub", "directory": str(shop), "parentID": "s1",
                               "agent": {"id": "general", "provider": HAIKU[0], "model": HAIKU[1]}})
    spend(t, "s1-sub", "m2", 0.02, "general", HAIKU, input=20)
    t.at("2026-10-02T09:00:00.000Z")
    t.session("s2", shop, "build", GPT, tools=0, delete=False)
    spend(t, "s2", "m3", 0.30, "build", GPT, input=300, output=30)
    t.at("2026-10-09T10:00:00.000Z")
    t.session("s3", web, "build", CLAUDE, tools=0, commits=[(None, None)], bug=True, delete=False)
    spend(t, "s3", "m4", 0.05, "build", CLAUDE, input=50, output=5)
    t.flush()
    t.close()
    return tmp_path / "db.lmdb"


def usage(capsys: pytest.CaptureFixture[str], database: Path, *argv: str) -> dict[str, Any]:
    code, out, err = cli(capsys, "usage", *argv, "--json", "--database", str(database))
    assert code == 0, err
    return json.loads(out)


def figures(rows: list[dict[str, Any]], key: str) -> list[tuple[Any, ...]]:
    return [(row[key], round(row["totalCost"], 6), row["sessions"], row["commits"], row["grades"], row["bugs"])
            for row in rows]


def test_daily_in_utc_and_in_another_time_zone(capsys: pytest.CaptureFixture[str], database: Path) -> None:
    daily = usage(capsys, database, "daily", "--timezone", "UTC")
    assert figures(daily["daily"], "date") == [
        ("2026-10-01", 0.12, 1, 1, 1, 0), ("2026-10-02", 0.30, 1, 0, 0, 0), ("2026-10-09", 0.05, 1, 1, 0, 1)]
    first = daily["daily"][0]
    # ccusage's fields: the subagent's message (haiku) is part of the day, under its own model
    assert (first["inputTokens"], first["outputTokens"], first["cacheCreationTokens"], first["cacheReadTokens"],
            first["totalTokens"]) == (120, 10, 50, 1000, 1180)
    assert first["modelsUsed"] == ["anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5"]
    assert [(m["modelName"], m["cost"]) for m in first["modelBreakdowns"]] == [
        ("anthropic/claude-sonnet-4-5", 0.10), ("anthropic/claude-haiku-4-5", 0.02)]
    assert round(daily["totals"]["totalCost"], 6) == 0.47 and daily["totals"]["sessions"] == 3
    # In UTC+2, s1 (22:30 UTC) is already on Oct 2.
    shifted = usage(capsys, database, "daily", "--timezone", "+02:00")
    assert figures(shifted["daily"], "date") == [("2026-10-02", 0.42, 2, 1, 1, 0), ("2026-10-09", 0.05, 1, 1, 0, 1)]
    assert shifted["timezone"] == "+02:00"


def test_weekly_monthly_and_session(capsys: pytest.CaptureFixture[str], database: Path) -> None:
    weekly = usage(capsys, database, "weekly", "--timezone", "UTC")
    assert figures(weekly["weekly"], "week") == [("2026-09-28", 0.42, 2, 1, 1, 0), ("2026-10-05", 0.05, 1, 1, 0, 1)]
    monthly = usage(capsys, database, "monthly", "--timezone", "UTC")
    assert figures(monthly["monthly"], "month") == [("2026-10", 0.47, 3, 2, 1, 1)]
    sessions = usage(capsys, database, "session", "--timezone", "UTC")["sessions"]
    assert figures(sessions, "sessionId") == [("s1", 0.12, 1, 1, 1, 0), ("s2", 0.30, 1, 0, 0, 0),
                                              ("s3", 0.05, 1, 1, 0, 1)]
    assert sessions[0]["title"] == "task s1" and sessions[0]["agents"] == ["build", "general"]
    assert sessions[0]["projectPath"].endswith("/projects/shop")


def test_filters(capsys: pytest.CaptureFixture[str], database: Path) -> None:
    web = usage(capsys, database, "daily", "--timezone", "UTC", "--project", "web")
    assert figures(web["daily"], "date") == [("2026-10-09", 0.05, 1, 1, 0, 1)]
    one_day = usage(capsys, database, "daily", "--timezone", "UTC", "--since", "2026-10-02", "--until", "20261002")
    assert figures(one_day["daily"], "date") == [("2026-10-02", 0.30, 1, 0, 0, 0)]
    # a date is a whole day in the time zone: in UTC+2 Oct 2 starts at 22:00 UTC on Oct 1
    local_day = usage(capsys, database, "daily", "--timezone", "+02:00", "--since", "2026-10-02", "--until",
                      "2026-10-02")
    assert figures(local_day["daily"], "date") == [("2026-10-02", 0.42, 2, 1, 1, 0)]
    code, _, err = cli(capsys, "usage", "daily", "--timezone", "Mars/Olympus", "--database", str(database))
    assert code == 2 and "is not a time zone" in err
    with pytest.raises(SystemExit) as exit_info:
        cli(capsys, "usage", "yearly", "--database", str(database))
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.splitlines() == ["agent-tracker: usage: argument view: invalid choice: 'yearly' (choose from "
                                "'daily', 'weekly', 'monthly', 'session')",
                                "hint: agent-tracker usage --help shows every option, with examples."]


def test_periods_rule() -> None:
    from datetime import datetime, timezone

    utc = TimeZone.parse("UTC")
    sunday_night = datetime(2026, 10, 4, 23, 30, tzinfo=timezone.utc)  # a Sunday
    assert period_of(sunday_night, "weekly", utc) == "2026-09-28"
    assert period_of(sunday_night, "weekly", TimeZone.parse("+01:00")) == "2026-10-05"
    assert period_of(sunday_night, "monthly", TimeZone.parse("-01:00")) == "2026-10"
    assert window("2026-10-02", "2026-10-02", TimeZone.parse("+02:00")) == (
        "2026-10-01T22:00:00.000Z", "2026-10-02T22:00:00.000Z")


@pytest.mark.parametrize("width", [80, 100, 120])
def test_the_table_fits_and_keeps_the_first_columns(database: Path, width: int) -> None:
    from bridge.config import BridgeConfig
    from bridge.store import Store

    store = Store.open(BridgeConfig(database_path=str(database)), readonly=True)
    with store:
        view = build_usage(store, "daily", timezone_name="UTC")
    buffer = io.StringIO()
    render_usage(view, Console(file=buffer, width=width, color_system=None), breakdown=True)
    text = buffer.getvalue()
    assert max(len(line) for line in text.splitlines()) <= width
    header = next(line for line in text.splitlines() if line.lstrip().startswith("Date"))
    assert header.split()[:1] == ["Date"] and "Cost ($)" in header and "Sessions" in header
    total = next(line.split() for line in text.splitlines() if line.lstrip().startswith("Total"))
    assert "0.47" in total
    assert "└ anthropic/claude-haiku-4-5" in text


def test_since_and_until_on_recommend_status_and_export(capsys: pytest.CaptureFixture[str], database: Path,
                                                        tmp_path: Path) -> None:
    """Item 5: recommend, status and export take --since/--until as report does."""
    code, out, err = cli(capsys, "export", "--json", "--since", "2026-10-02", "--until", "2026-10-02",
                         "--database", str(database))
    assert code == 0, err
    tables = json.loads(out)["tables"]
    assert [s["sessionID"] for s in tables["sessions"]] == ["s2"]
    assert [u["messageID"] for u in tables["usage"]] == ["m3"]
    assert tables["commits"] == [] and [a["id"] for a in tables["agents"]] == ["build"]  # state: whole
    code, out, err = cli(capsys, "status", "build", "--json", "--since", "2026-10-09", "--database", str(database))
    assert code == 0, err
    assert [(s["model"], s["sessions"]) for s in json.loads(out)["setups"]] == [("anthropic/claude-sonnet-4-5", 1)]
    code, out, err = cli(capsys, "recommend", str(tmp_path), "--json", "--min-sessions", "1", "--until",
                         "2026-10-01", "--database", str(database))
    assert code == 0, err
    assert json.loads(out)["recommendation"]["sessions"] == 1
    assert json.loads(out)["levels"][-1]["sessions"] == 1  # only s1 (Oct 1) counts
