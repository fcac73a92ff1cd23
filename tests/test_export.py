"""`agent-tracker export`: every format parses back to exactly what the database holds."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from test_report import CLAUDE, GPT, Tracker, populate

from bridge.cli import main
from bridge.config import BridgeConfig
from bridge.report.export import TABLES
from bridge.store import Store


def stored(database: Path) -> dict[str, list[dict[str, Any]]]:
    """Every table as the database holds it, in key order (the export's order)."""
    with Store.open(BridgeConfig(database_path=str(database))) as store, store.read() as view:
        return {table: [record for _, record in view.scan(db)] for table, (db, _) in TABLES.items()}


@pytest.fixture
def database(tmp_path: Path) -> Path:
    tracker, shop, _ = populate(tmp_path)
    # A float XP value that does not round-trip through a naive format, and a multi-setup session.
    tracker.service.rules = tracker.service.rules.__class__(tool_call_xp=0.1)
    tracker.session("floaty", shop, "build", GPT, tools=3)
    tracker.send("session.created", {"sessionID": "both", "directory": str(shop),
                                     "agent": {"id": "build", "provider": CLAUDE[0], "model": CLAUDE[1]}})
    tracker.send("session.updated", {"sessionID": "both", "agent": {"id": "build", "provider": GPT[0], "model": GPT[1]}})
    tracker.send("retrospective.recorded", {"sessionID": "both", "summary": 'a "quoted", multi\nline summary',
                                            "wentWell": ["tests"], "toImprove": [], "lessons": ["ask first"]})
    # Usage: two messages of the two-setup session under their own setups, one of floaty's
    tracker.send("usage.recorded", {"sessionID": "both", "messageID": "m1", "cost": 0.1, "durationMs": 1500,
                                    "tokens": {"input": 100, "output": 10, "cacheRead": 1000},
                                    "agent": {"id": "build", "provider": CLAUDE[0], "model": CLAUDE[1]}})
    tracker.send("usage.recorded", {"sessionID": "both", "messageID": "m2", "cost": 0.2, "durationMs": 500,
                                    "tokens": {"input": 200, "reasoning": 5, "cacheWrite": 7}})
    tracker.send("usage.recorded", {"sessionID": "floaty", "messageID": "m3", "cost": 0.0,
                                    "tokens": {"output": 3}})
    tracker.close()
    return tmp_path / "db.lmdb"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


KINDS = {"tokensInput": "input", "tokensOutput": "output", "tokensReasoning": "reasoning",
         "tokensCacheRead": "cacheRead", "tokensCacheWrite": "cacheWrite"}


def with_derived(table: str, record: dict[str, Any], stacks: dict[str, str]) -> dict[str, Any]:
    record = dict(record)
    if table == "sessions":
        for name in ("toolCalls", "failedToolCalls", "commands", "commits", "pushes", "xpEarned", "fixedUpCommits"):
            record.setdefault(name, 0)
        entries = list(record.get("usage", {}).values())
        summed = {name: sum(entry[name] for entry in entries) if entries else None
                  for name in ("cost", "durationMs", "messages", *KINDS.values())}
        record.update({"cost": summed["cost"], "durationMs": summed["durationMs"], "messages": summed["messages"],
                       "tokens": sum(summed[kind] for kind in KINDS.values()) if entries else None,
                       **{column: summed[kind] for column, kind in KINDS.items()}})
    if table == "usage":
        record.update({column: record["tokens"][kind] for column, kind in KINDS.items()})
    if table in ("sessions", "commits", "grades"):
        record["stack"] = stacks.get(record.get("projectPath"), "unknown")
    return record


def expected_tables(database: Path) -> dict[str, list[dict[str, Any]]]:
    tables = stored(database)
    stacks = {p["path"]: p["stack"] for p in tables["projects"]}
    return {table: [with_derived(table, r, stacks) for r in records] for table, records in tables.items()}


def test_json_export_is_the_database(capsys: pytest.CaptureFixture[str], database: Path, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "export", "--database", str(database))
    assert code == 0
    document = json.loads(out)
    assert (document["format"], document["schemaVersion"], document["database"]) == \
        ("agent-tracker-export", 1, str(database))
    expected = expected_tables(database)
    assert document["tables"] == expected
    sessions = {s["sessionID"]: s for s in document["tables"]["sessions"]}
    assert sessions["floaty"]["xpEarned"] == 0.1 + 0.1 + 0.1 == 0.30000000000000004
    assert sessions["g3"]["xpEarned"] == 0 and sessions["c1"]["xpEarned"] == 19
    assert sessions["both"]["setups"] == ["build|anthropic/claude-sonnet-4-5", "build|openai/gpt-5"]
    assert sessions["c1"]["stack"] == "python/fastapi"
    # activities: a bug, a reinstatement and the summary of each of the 15 sessions that ended (deleted)
    assert [len(expected[t]) for t in TABLES] == [3, 2, 16, 12, 23, 2 + 15, 1, 3, 0]
    assert {k: sessions["both"][k] for k in ("cost", "tokens", "tokensInput", "tokensCacheWrite", "durationMs",
                                             "messages")} == {"cost": 0.1 + 0.2, "tokens": 1322, "tokensInput": 300,
                                                              "tokensCacheWrite": 7, "durationMs": 2000, "messages": 2}
    assert sorted(sessions["both"]["usage"]) == ["build|anthropic/claude-sonnet-4-5", "build|openai/gpt-5"]
    assert (sessions["floaty"]["cost"], sessions["floaty"]["durationMs"]) == (0.0, 0)
    assert sessions["c1"]["cost"] is None and sessions["c1"]["tokens"] is None

    # --output FILE, and --output DIR (a default file name inside it)
    code, _, err = run(capsys, "export", "--database", str(database), "--output", str(tmp_path / "out" / "all.json"))
    assert code == 0 and "Exported 3 agents, 2 projects, 16 sessions, 12 commits, 23 grades" in err
    assert json.loads((tmp_path / "out" / "all.json").read_text())["tables"] == expected
    code, _, _ = run(capsys, "export", "--database", str(database), "--output", str(tmp_path / "out"))
    assert json.loads((tmp_path / "out" / "agent-tracker-export.json").read_text())["tables"] == expected


def test_jsonl_export(capsys: pytest.CaptureFixture[str], database: Path) -> None:
    code, out, _ = run(capsys, "export", "--format", "jsonl", "--database", str(database))
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert all(next(iter(line)) == "table" for line in lines)
    expected = expected_tables(database)
    for table, records in expected.items():
        assert [{k: v for k, v in line.items() if k != "table"} for line in lines if line["table"] == table] == records
    assert len(lines) == sum(map(len, expected.values()))


def parse_cell(text: str) -> Any:
    """The documented CSV conventions, read back."""
    if text == "":
        return None
    if text in ("true", "false"):
        return text == "true"
    if text[:1] in "[{":
        return json.loads(text)
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def test_csv_folder_export(capsys: pytest.CaptureFixture[str], database: Path, tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    code, _, err = run(capsys, "export", "--format", "csv", "--output", str(folder), "--database", str(database))
    assert code == 0 and f"to {folder}" in err
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{t}.csv" for t in TABLES)
    expected = expected_tables(database)
    for table, (_, columns) in TABLES.items():
        with open(folder / f"{table}.csv", newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            rows = list(reader)
        assert header == [*columns, "extra"]
        assert len(rows) == len(expected[table])
        for row, record in zip(rows, expected[table]):
            parsed = {name: parse_cell(cell) for name, cell in zip(header, row)}
            extra = parsed.pop("extra") or {}
            rebuilt = {k: v for k, v in {**parsed, **extra}.items() if v is not None}
            original = {k: v for k, v in record.items() if v is not None}
            # Text that looks like a number stays text in the database: compare on the database's types.
            for name, value in original.items():
                if isinstance(value, str):
                    rebuilt[name] = str(rebuilt[name]) if not isinstance(rebuilt.get(name), str) else rebuilt[name]
            assert rebuilt == original, (table, record)
    sessions = list(csv.DictReader(open(folder / "sessions.csv", newline="")))
    floaty = next(s for s in sessions if s["sessionID"] == "floaty")
    assert floaty["xpEarned"] == "0.30000000000000004" and float(floaty["xpEarned"]) == 0.1 + 0.1 + 0.1
    retro = list(csv.DictReader(open(folder / "retrospectives.csv", newline="")))[0]
    assert retro["summary"] == 'a "quoted", multi\nline summary' and retro["wentWell"] == '["tests"]'
    agents = list(csv.DictReader(open(folder / "agents.csv", newline="")))
    assert {a["id"]: a["halted"] for a in agents} == {"build": "false", "general": "false", "plan": "false"}

    (tmp_path / "a-file").write_text("x")
    code, _, err = run(capsys, "export", "--format", "csv", "--output", str(tmp_path / "a-file"), "--database", str(database))
    assert code == 2 and "must be a folder" in err


def test_csv_to_stdout_has_a_table_column(capsys: pytest.CaptureFixture[str], database: Path) -> None:
    code, out, _ = run(capsys, "export", "--format", "csv", "--database", str(database))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    header = next(csv.reader(io.StringIO(out)))
    assert header[0] == "table" and header[-1] == "extra" and len(header) == len(set(header))
    expected = expected_tables(database)
    assert {table: sum(1 for r in rows if r["table"] == table) for table in TABLES} == \
        {table: len(records) for table, records in expected.items()}
    commits = [r for r in rows if r["table"] == "commits"]
    assert [c["hash"] for c in commits] == [c["hash"] for c in expected["commits"]]
    assert all(c["sessionID"] for c in commits) and all(c["toolCalls"] == "" for c in commits)
    grades = [int(r["grade"]) for r in rows if r["table"] == "grades"]
    assert grades == [g["grade"] for g in expected["grades"]]


def test_export_of_an_empty_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    Tracker(tmp_path / "empty.lmdb").close()
    code, out, _ = run(capsys, "export", "--database", str(tmp_path / "empty.lmdb"))
    assert code == 0 and json.loads(out)["tables"] == {table: [] for table in TABLES}
    code, out, _ = run(capsys, "export", "--format", "jsonl", "--database", str(tmp_path / "empty.lmdb"))
    assert code == 0 and out == ""


def test_exported_numbers_match_the_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """What a spreadsheet recomputes from the export equals the report's numbers."""
    tracker, _, _ = populate(tmp_path)
    tracker.close()
    database = tmp_path / "db.lmdb"
    _, out, _ = run(capsys, "export", "--database", str(database))
    tables = json.loads(out)["tables"]
    _, out, _ = run(capsys, "report", "--json", "--database", str(database))
    report = {(s["agent"], s["model"], s["stack"]): s for s in json.loads(out)["setups"]}
    for (agent, model, stack), setup in report.items():
        provider, _, name = model.partition("/")
        sessions = [s for s in tables["sessions"] if (s["agentId"], s["provider"], s["model"], s["stack"]) ==
                    (agent, provider, name, stack)]
        commits = [c for c in tables["commits"] if (c["agentId"], c["provider"], c["model"], c["stack"]) ==
                   (agent, provider, name, stack)]
        user = [g["grade"] for g in tables["grades"] if g["grader"] == "user" and
                (g["agentId"], g["provider"], g["model"], g["stack"]) == (agent, provider, name, stack)]
        assert setup["sessions"] == len(sessions) and setup["commits"] == len(commits)
        assert setup["xpPerSession"] == sum(s["xpEarned"] for s in sessions) / len(sessions)
        assert setup["meanUserGrade"] == (sum(user) / len(user) if user else None)
