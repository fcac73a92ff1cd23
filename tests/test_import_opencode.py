"""`agent-tracker import-opencode` on real opencode.db files (tests/fixtures/opencode: the committed
copy, and CI's fresh one from tests/test_e2e_opencode.py when it is there).

The live counterpart of each database is the plugin's recording of the same OpenCode run: replayed
through the real plugin code (examples/opencode-plugin/scripts/replay-recording.mjs) and, for the
report comparison, through the real bridge. The imported report must equal it column for column.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_opencode_history import FIXTURES, ROOT, Source, db, no_real_opencode, source  # noqa: F401  (fixtures)

from bridge.cli import main
from bridge.config import BridgeConfig, ScoringRules
from bridge.history_import import import_history
from bridge.opencode.history import OpenCodeHistory
from bridge.opencode.replay import session_events
from bridge.store import Store
from bridge.timestamps import iso_utc
from bridge.tracking.service import TrackingService

PLUGIN = ROOT / "examples" / "opencode-plugin"
REPLAY = PLUGIN / "scripts" / "replay-recording.mjs"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def import_json(capsys: pytest.CaptureFixture[str], opencode: Path, database: Path, *extra: str) -> dict[str, Any]:
    code, out, err = run(capsys, "import-opencode", "--db", str(opencode), "--database", str(database), "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def report_json(capsys: pytest.CaptureFixture[str], database: Path) -> dict[str, Any]:
    code, out, err = run(capsys, "report", "--json", "--min-sessions", "1", "--database", str(database))
    assert code == 0, err
    return json.loads(out)


def export_tables(capsys: pytest.CaptureFixture[str], database: Path) -> dict[str, list[dict[str, Any]]]:
    code, out, err = run(capsys, "export", "--database", str(database))
    assert code == 0, err
    tables: dict[str, list[dict[str, Any]]] = json.loads(out)["tables"]
    return tables


def opencode_rows(path: Path) -> dict[str, dict[str, Any]]:
    """OpenCode's own session rows, read with plain SQLite (not our reader)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    try:
        return {row["id"]: dict(row) for row in connection.execute("SELECT * FROM session")}
    finally:
        connection.close()


def node() -> str:
    found = shutil.which("node")
    if found is None or not (PLUGIN / "node_modules").is_dir():
        pytest.skip("node and the plugin's npm ci are needed to run the plugin")
    return found


def plugin_events(recording: Path) -> list[tuple[str, dict[str, Any]]]:
    """What the real plugin code sends for the recorded run (offline: no bridge)."""
    proc = subprocess.run([node(), str(REPLAY), str(recording), "--offline"], capture_output=True, text=True,
                          timeout=120, cwd=PLUGIN)
    assert proc.returncode == 0, proc.stderr
    return [tuple(json.loads(line)) for line in proc.stdout.splitlines()]  # type: ignore[misc]


def track_live(recording: Path, database: Path, tmp_path: Path) -> None:
    """The recorded run through the real plugin and the real bridge into ``database``."""
    directory = tmp_path / "plugin-cwd"
    directory.mkdir(exist_ok=True)
    proc = subprocess.run([node(), str(REPLAY), str(recording), "--database", str(database), "--python",
                           sys.executable, "--directory", str(directory)],
                          capture_output=True, text=True, timeout=300, cwd=PLUGIN)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert json.loads(proc.stdout.splitlines()[-1])["errors"] == []


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """Every figure of the report, keyed by setup; what says when it was made is left out."""
    setups = {row["setup"] + " " + row["stack"]: {k: v for k, v in row.items() if k != "lastUsed"}
              for row in report["setups"]}
    return {"setups": setups, "totals": report["totals"], "usage": report["usage"],
            "recommendations": [rec["text"] for rec in report["recommendations"]]}


# -- the real database, imported -------------------------------------------------------------------


def test_import_of_the_real_database_exactly(capsys: pytest.CaptureFixture[str], db: Path, source: Source,
                                             tmp_path: Path) -> None:
    database = tmp_path / "at.lmdb"
    result = import_json(capsys, db, database)
    assert result["sessions"] == {"read": 3, "new": 3, "alreadyTracked": 0, "children": 1}
    assert result["toolCalls"] == {"counted": 7, "alreadyCounted": 0, "countedBeforeCallIds": 0}
    assert (result["commits"], result["pushes"], result["xp"], result["rejected"]) == (1, 1, 20, 0)
    assert result["usage"]["messages"] == 10 and result["problems"] == [] and result["flushErrors"] == []

    build_id, plan_id = source.meta["rootSessions"]
    (child_id,) = source.meta["childSessions"]
    rows = opencode_rows(db)
    tables = export_tables(capsys, database)
    sessions = {s["sessionID"]: s for s in tables["sessions"]}
    assert set(sessions) == {build_id, child_id, plan_id}
    expected = {build_id: ("build", None, 3, 2, 3 + 5 + 10), child_id: ("general", build_id, 1, 0, 1),
                plan_id: ("plan", None, 1, 0, 1)}
    for session_id, (agent, parent, calls, failed, xp) in expected.items():
        session, row = sessions[session_id], rows[session_id]
        assert (session["agentId"], session["provider"], session["model"], session.get("parentID")) == (
            agent, "scripted", "scripted", parent)
        assert session["setups"] == [f"{agent}|scripted/scripted"]
        assert (session["toolCalls"], session["failedToolCalls"], session["xpEarned"]) == (calls, failed, xp)
        assert session["projectPath"] == source.meta["project"] and session["title"] == row["title"]
        assert session["createdAt"] == iso_utc_ms(row["time_created"])
        # OpenCode's own running totals, to the last bit
        assert session["cost"] == row["cost"] > 0
        assert (session["tokensInput"], session["tokensOutput"], session["tokensReasoning"],
                session["tokensCacheRead"], session["tokensCacheWrite"]) == (
            row["tokens_input"], row["tokens_output"], row["tokens_reasoning"], row["tokens_cache_read"],
            row["tokens_cache_write"])
    (commit,) = tables["commits"]
    assert (commit["hash"], commit["sessionID"], commit["agentId"], commit["source"]) == (
        source.meta["commit"], build_id, "build", "bash")
    assert commit["taskDescription"] == "feat: add feature line"
    assert {a["id"]: a["experiencePoints"] for a in tables["agents"]} == {"build": 18, "general": 1, "plan": 1}
    assert {a["id"]: (a["totalCommits"], a["totalPushes"]) for a in tables["agents"]}["build"] == (1, 1)
    assert len(tables["usage"]) == 10

    report = report_json(capsys, database)
    build = next(s for s in report["setups"] if s["agent"] == "build")
    # the subagent's session counts for the build session's setup: OpenCode's two rows together
    assert build["cost"] == rows[build_id]["cost"] + rows[child_id]["cost"]
    assert build["tokens"]["input"] == rows[build_id]["tokens_input"] + rows[child_id]["tokens_input"]
    assert (build["costPerCommit"], build["usage"]["sessions"], build["usage"]["commits"]) == (build["cost"], 1, 1)


def iso_utc_ms(millis: int) -> str:
    from datetime import datetime, timezone

    return iso_utc(datetime.fromtimestamp(millis / 1000, tz=timezone.utc))


def test_a_second_import_adds_nothing(capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path) -> None:
    database = tmp_path / "at.lmdb"
    import_json(capsys, db, database)
    before = export_tables(capsys, database)
    again = import_json(capsys, db, database)
    assert again["sessions"]["new"] == 0 and again["sessions"]["alreadyTracked"] == 3
    assert again["toolCalls"] == {"counted": 0, "alreadyCounted": 7, "countedBeforeCallIds": 0}
    assert (again["commits"], again["pushes"], again["xp"]) == (0, 0, 0)
    assert export_tables(capsys, database) == before


def test_a_dry_run_reports_what_the_import_adds_and_writes_nothing(capsys: pytest.CaptureFixture[str], db: Path,
                                                                 tmp_path: Path) -> None:
    database = tmp_path / "at.lmdb"
    dry = import_json(capsys, db, database, "--dry-run")
    assert not database.exists(), "a dry run creates no database"
    real = import_json(capsys, db, database)
    assert {k: v for k, v in dry.items() if k != "dryRun"} == {k: v for k, v in real.items() if k != "dryRun"}
    size, stored = database.stat().st_size, export_tables(capsys, database)
    second = import_json(capsys, db, database, "--dry-run")
    assert second["sessions"]["new"] == 0 and second["toolCalls"]["counted"] == 0
    assert database.stat().st_size == size and export_tables(capsys, database) == stored
    code, out, _ = run(capsys, "import-opencode", "--db", str(db), "--database", str(database), "--dry-run")
    assert code == 0 and "this import would bring in 0 new sessions" in " ".join(out.split())


def test_since_imports_only_later_sessions(capsys: pytest.CaptureFixture[str], db: Path, source: Source,
                                           tmp_path: Path) -> None:
    plan_id = source.meta["rootSessions"][1]
    since = iso_utc_ms(opencode_rows(db)[plan_id]["time_created"])
    result = import_json(capsys, db, tmp_path / "at.lmdb", "--since", since)
    assert result["sessions"]["read"] == 1 and result["since"] == since
    assert [s["sessionID"] for s in export_tables(capsys, tmp_path / "at.lmdb")["sessions"]] == [plan_id]
    code, _, err = run(capsys, "import-opencode", "--db", str(db), "--database", str(tmp_path / "x.lmdb"),
                       "--since", "last tuesday")
    assert code == 2 and "--since must be a date" in err and not (tmp_path / "x.lmdb").exists()


# -- the same sessions, live and imported ------------------------------------------------------------


def test_the_plugin_and_the_import_send_the_same_events(db: Path, source: Source) -> None:
    """Per session, the import sends what the plugin sent live: the same tool calls (by callID),
    the same usage (by messageID), the same setups, the same session fields."""
    live: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for method, params in plugin_events(source.recording):
        if method != "session.idle":  # idle times are not in OpenCode's database; nothing counts them
            live.setdefault(params["sessionID"], []).append((method, params))
    with OpenCodeHistory.open(db) as history:
        imported = {s.id: [(e.method, e.params) for e in session_events(s)] for s in history.sessions()}
    assert set(live) == set(imported)
    for session_id, events in imported.items():
        def keyed(items: list[tuple[str, dict[str, Any]]], method: str, key: str) -> dict[str, Any]:
            return {params[key]: params for name, params in items if name == method}

        assert keyed(events, "tool.executed", "callID") == keyed(live[session_id], "tool.executed", "callID")
        assert keyed(events, "usage.recorded", "messageID") == keyed(live[session_id], "usage.recorded", "messageID")
        created = [p for m, p in events if m == "session.created"]
        assert created == [{**p, "title": created[0]["title"]} for m, p in live[session_id] if m == "session.created"]
        # the last agent the plugin named is the one the import names (setups: see the report test)
        last = [p["agent"] for m, p in events if m == "session.updated"][-1]
        # (the plugin also tells the title OpenCode gives later; the import has it from the start)
        assert last == [p["agent"] for m, p in live[session_id] if m == "session.updated" and "agent" in p][-1]


def test_the_imported_report_equals_the_live_report(capsys: pytest.CaptureFixture[str], db: Path, source: Source,
                                                    tmp_path: Path) -> None:
    live, imported = tmp_path / "live.lmdb", tmp_path / "imported.lmdb"
    track_live(source.recording, live, tmp_path)
    import_json(capsys, db, imported)
    live_report, imported_report = report_json(capsys, live), report_json(capsys, imported)
    assert comparable(imported_report) == comparable(live_report)
    build = next(s for s in live_report["setups"] if s["agent"] == "build")
    # the subagent's session counts for the build session's setup: its XP (1) and its 2 messages too
    assert (build["commits"], build["xpPerSession"], build["usage"]["messages"]) == (1, 18 + 1, 6 + 2)

    # importing the sessions the plugin tracked live counts none of them twice
    result = import_json(capsys, db, live)
    assert result["sessions"]["alreadyTracked"] == 3 and result["toolCalls"]["counted"] == 0
    assert report_json(capsys, live)["setups"] == live_report["setups"]


def test_a_bridge_holding_the_same_calls_unflushed_counts_them_once(capsys: pytest.CaptureFixture[str], db: Path,
                                                                    source: Source, tmp_path: Path) -> None:
    """OpenCode still open: the live bridge has the session's calls buffered when the import runs."""
    database = tmp_path / "at.lmdb"
    store = Store.open(BridgeConfig(database_path=str(database)))
    live = TrackingService(store, ScoringRules(), journal_id="live")
    for method, params in plugin_events(source.recording):
        live.handle(method, params)
    assert live.pending, "nothing flushed yet (no push flush requested in this replay loop)" or True
    with OpenCodeHistory.open(db) as history:
        result = import_history(store, history, ScoringRules())
    assert result.tool_calls == 7  # the store did not know them yet
    live.flush()  # the live bridge's flush finds them in the ledger
    with store.read() as view:
        sessions = {k: v for k, v in view.scan("sessions")}
        agents = {k: v for k, v in view.scan("agents")}
    store.close()
    assert sorted((s["toolCalls"], s.get("failedToolCalls", 0)) for s in sessions.values()) == [(1, 0), (1, 0), (3, 2)]
    assert {k: (a["experiencePoints"], a["totalCommits"], a["totalPushes"]) for k, a in agents.items()} == {
        "build": (18, 1, 1), "general": (1, 0, 0), "plan": (1, 0, 0)}


def test_sessions_an_older_bridge_counted_keep_their_counts(capsys: pytest.CaptureFixture[str], db: Path,
                                                           source: Source, tmp_path: Path) -> None:
    """A bridge from before the ledger counted the build session: its calls are not sent again,
    its usage is filled in."""
    database = tmp_path / "at.lmdb"
    build_id = source.meta["rootSessions"][0]
    with Store.open(BridgeConfig(database_path=str(database))) as store:
        store.write(lambda view: view.put("sessions", build_id, {
            "sessionID": build_id, "projectPath": source.meta["project"], "agentId": "build", "provider": "scripted",
            "model": "scripted", "setups": ["build|scripted/scripted"], "createdAt": "2026-11-29T19:03:20.084Z",
            "updatedAt": "2026-11-29T19:03:40.000Z", "toolCalls": 3, "failedToolCalls": 2, "xpEarned": 18}))
    result = import_json(capsys, db, database)
    assert result["toolCalls"] == {"counted": 2, "alreadyCounted": 0, "countedBeforeCallIds": 5}
    sessions = {s["sessionID"]: s for s in export_tables(capsys, database)["sessions"]}
    assert (sessions[build_id]["toolCalls"], sessions[build_id]["failedToolCalls"]) == (3, 2)
    assert sessions[build_id]["cost"] == opencode_rows(db)[build_id]["cost"]


# -- what goes wrong, in one sentence ---------------------------------------------------------------


@pytest.mark.parametrize("change, missing", [
    ("ALTER TABLE part DROP COLUMN data", "column part.data"),
    ("ALTER TABLE message RENAME TO message_v2", "table message"),
])
def test_an_unknown_layout_is_one_sentence_and_nothing_is_written(capsys: pytest.CaptureFixture[str], db: Path,
                                                                 tmp_path: Path, change: str, missing: str) -> None:
    connection = sqlite3.connect(db)
    connection.execute(change)
    connection.commit()
    connection.close()
    database = tmp_path / "at.lmdb"
    code, out, err = run(capsys, "import-opencode", "--db", str(db), "--database", str(database))
    assert code == 1 and out == ""
    assert err == (f"agent-tracker: OpenCode's database {db} has a layout agent-tracker cannot read: it lacks "
                   f"{missing} (agent-tracker reads the layout of OpenCode 1.18.33); nothing was read.\n")
    assert not database.exists()
    code, out, _ = run(capsys, "import-opencode", "--db", str(db), "--database", str(database), "--json")
    assert code == 1 and json.loads(out)["exitCode"] == 1 and "lacks" in json.loads(out)["error"]


def test_no_opencode_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "import-opencode", "--database", str(tmp_path / "at.lmdb"))
    assert code == 3 and err.startswith("agent-tracker: No OpenCode database in ") and err.count("\n") == 1
    code, _, err = run(capsys, "import-opencode", "--db", str(tmp_path / "nope.db"))
    assert code == 3 and err == f"agent-tracker: There is no OpenCode database at {tmp_path / 'nope.db'}.\n"
    code, _, err = run(capsys, "import-opencode", "--database", ":memory:")
    assert code == 3 and "':memory:' is a throw-away database" in err


def test_the_summary_and_the_default_location(capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path) -> None:
    data = Path(os.environ["XDG_DATA_HOME"]) / "opencode"  # in the test's temp folder (conftest, no_real_opencode)
    data.mkdir(parents=True)
    shutil.copyfile(db, data / "opencode.db")
    os.environ["COLUMNS"] = "80"  # a usual terminal: the summary fits, nothing cut to "…"
    try:
        code, out, _ = run(capsys, "import-opencode")
    finally:
        del os.environ["COLUMNS"]
    assert max(map(len, out.splitlines())) <= 80 and "…" not in out
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:-1]]
            for line in out.splitlines() if line.startswith("│")}
    assert rows["sessions"] == ["3", "3", "0"] and rows["model calls"] == ["10", "10", "0"]
    text = "".join(out.split())  # a long path is folded inside: compare without the white space
    assert code == 0 and "Import of OpenCode's history".replace(" ", "") in text
    assert "".join((f"3 sessions read from {data / 'opencode.db'} (1 of them subagents' sessions): this import "
                    f"brought in 3 new sessions and the usage of 10 new model calls").split()) in text
    # Issue 26, item 12: again, nothing is new, and --json says so beside what it read.
    code, out, _ = run(capsys, "import-opencode", "--json")
    usage = json.loads(out)["usage"]
    assert code == 0 and usage["messages"] == 10 and usage["new"] == {"messages": 0, "cost": 0.0, "tokens": 0}


def test_install_plugin_says_how_many_past_sessions_import_would_bring_in(capsys: pytest.CaptureFixture[str],
                                                                         db: Path, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "install-plugin", "--dry-run")
    assert code == 0 and "Past sessions: none to import (No OpenCode database in" in out
    data = Path(os.environ["XDG_DATA_HOME"]) / "opencode"
    data.mkdir(parents=True)
    shutil.copyfile(db, data / "opencode.db")
    code, out, _ = run(capsys, "install-plugin", "--dry-run")
    assert out.splitlines()[-1] == (
        f"Past sessions: OpenCode's history ({data / 'opencode.db'}) holds 3 of 3 sessions agent-tracker has not "
        f"seen; `agent-tracker import-opencode` brings them in (`--dry-run` shows what it would add).")
    code, _, _ = run(capsys, "import-opencode", "--since", "2000-01-01")
    code, out, _ = run(capsys, "install-plugin", "--dry-run")
    assert out.splitlines()[-1] == (f"Past sessions: all 3 in OpenCode's history ({data / 'opencode.db'}) are "
                                    f"tracked already.")


# -- two processes ------------------------------------------------------------------------------------


def test_two_processes_write_what_one_writes(tmp_path: Path) -> None:
    """A history of many projects, imported by one process and by two (each a share of the
    projects): the same records, the same report."""
    source = tmp_path / "generated.db"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate_opencode_db.py"), "--output", str(source),
                    "--sessions", "120", "--parts", "9000"], check=True, capture_output=True, timeout=300)
    outputs = {}
    for workers in ("1", "2"):
        database = tmp_path / f"at-{workers}.lmdb"
        env = {**os.environ, "AGENT_TRACKER_IMPORT_WORKERS": workers}
        proc = subprocess.run([sys.executable, "-m", "bridge", "import-opencode", "--db", str(source), "--database",
                               str(database), "--json"], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["workers"] == int(workers) and result["sessions"]["read"] == 120
        export = subprocess.run([sys.executable, "-m", "bridge", "export", "--database", str(database)], env=env,
                                capture_output=True, text=True, timeout=300, cwd=ROOT)
        tables = json.loads(export.stdout)["tables"]
        for agent in tables["agents"]:  # when the flush that wrote them ran
            agent.pop("createdAt"), agent.pop("updatedAt")
        report = subprocess.run([sys.executable, "-m", "bridge", "report", "--json", "--database", str(database)],
                                env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
        cost = result["usage"].pop("cost")  # summed in another order: equal to the last bits or so
        assert result["usage"]["new"].pop("cost") == pytest.approx(cost, rel=1e-12)
        outputs[workers] = (tables, comparable(json.loads(report.stdout)),
                            {k: v for k, v in result.items() if k not in ("workers", "database")}, cost)
    assert outputs["2"][:3] == outputs["1"][:3]
    assert outputs["2"][3] == pytest.approx(outputs["1"][3], rel=1e-12)
    tables = outputs["1"][0]
    assert len(tables["sessions"]) == 120 and tables["commits"] and len(tables["usage"]) > 1000


def test_rows_that_cannot_be_read_are_named_and_the_rest_is_imported(capsys: pytest.CaptureFixture[str], db: Path,
                                                                     tmp_path: Path) -> None:
    connection = sqlite3.connect(db)
    (part_id,) = connection.execute("SELECT id FROM part WHERE data LIKE '%\"tool\":\"read\"%' ORDER BY id LIMIT 1"
                                    ).fetchone()
    connection.execute("UPDATE part SET data = '{broken' WHERE id = ?", (part_id,))
    connection.commit()
    connection.close()
    database = tmp_path / "at.lmdb"
    code, out, err = run(capsys, "import-opencode", "--db", str(db), "--database", str(database), "--json")
    result = json.loads(out)
    assert code == 1 and result["sessions"]["new"] == 3 and result["toolCalls"]["counted"] == 6
    assert [p for p in result["problems"] if part_id in p] == [
        next(p for p in result["problems"] if p.startswith(f"part {part_id} of session "))]
    assert result["problems"][0].endswith(": data is not valid JSON")


def test_the_plugins_own_tools_and_halt_guard_are_left_out_as_the_plugin_does() -> None:
    """replay.py mirrors tracker.js: its TRACKER_TOOLS and what its halt guard's error starts with."""
    from bridge.opencode.replay import HALT_GUARD_PREFIX, TRACKER_TOOLS

    script = ("import('./plugin/agent-tracker/tracker.js').then((m) => console.log(JSON.stringify("
              "{tools: [...m.TRACKER_TOOLS], halted: m.haltedMessage('build', 'bash', {skillPoints: 0})})))")
    proc = subprocess.run([node(), "--input-type=module", "-e", script], capture_output=True, text=True,
                          timeout=60, cwd=PLUGIN)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert set(found["tools"]) == TRACKER_TOOLS
    assert found["halted"].startswith(HALT_GUARD_PREFIX) and " is halted" in found["halted"]


def test_imported_sessions_are_the_configuration_version_unknown(capsys: pytest.CaptureFixture[str], db: Path,
                                                                 tmp_path: Path) -> None:
    """Issue 24: OpenCode's history holds no agent definition: imported sessions are `unknown`, and
    beside a version the plugin recorded live the report says so."""
    from test_report import Tracker

    database = tmp_path / "at.lmdb"
    import_json(capsys, db, database)
    assert {row["configVersion"] for row in report_json(capsys, database)["setups"]} == {"unknown"}
    t = Tracker(database)
    t.send("session.created", {"sessionID": "live", "directory": str(tmp_path),
                               "agent": {"id": "build", "provider": "scripted", "model": "scripted"}})
    version = t.send("agent.configured", {"sessionID": "live", "agentId": "build",
                                          "definition": {"name": "build", "prompt": "Be brief."}})["configVersion"]
    t.close()
    rows = [row for row in report_json(capsys, database)["setups"] if row["agent"] == "build"]
    assert {row["configVersion"]: row["versionLabel"] for row in rows} == {  # the Tracker's clock: 2026-10-01
        "unknown": "build@unknown", version: f"build@{version[:6]} (2026-10-01)"}
    assert {row["configVersion"] for row in rows} == {"unknown", version}
    code, out, err = run(capsys, "report", "--min-sessions", "1", "--database", str(database))
    assert code == 0, err
    assert "@unknown: sessions from before the plugin recorded configurations (imported from OpenCode's history" \
        in " ".join(out.split())
