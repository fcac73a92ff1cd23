"""Issue 28: Parquet export, merge between machines (import-export) and the team report on DuckDB.

Two people's real databases (the real TrackingService on real LMDB) with overlapping and disjoint
sessions; a third database gets every session once, through the same rules. Their exports in one
folder must give the team report the numbers `agent-tracker report` gives over that third
database, and import-export must rebuild it without losing or doubling anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_report import CLAUDE, GPT, Tracker, make_projects

from bridge.cli import main
from bridge.config import BridgeConfig
from bridge.store import Store

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("duckdb")

from bridge.team import schema  # noqa: E402
from bridge.team.parquet_out import DATABASE_ID_KEY  # noqa: E402  (after the extra's presence is known)

# sid -> (project, agent, model, tools, commits [(agent grade, user grade)], bug). Times and hashes
# are fixed per session, so a session both people recorded is the same in both databases.
Plan = dict[str, tuple[str, str, tuple[str, str], int, list[tuple[int | None, int | None]], bool]]
SHARED: Plan = {
    "s1": ("shop", "build", CLAUDE, 2, [(5, 5)], False),
    "s2": ("shop", "build", GPT, 1, [(2, 2)], False),
}
ALICE: Plan = {  # generous: only Claude, graded 5
    "a1": ("shop", "build", CLAUDE, 3, [(5, 5), (5, 5)], False),
    "a2": ("shop", "build", CLAUDE, 1, [(2, 5)], False),
    "a3": ("shop", "build", CLAUDE, 2, [], False),
    "a4": ("web", "build", CLAUDE, 1, [(2, 2)], False),
}
BOB: Plan = {  # harsh: Claude -1, GPT 1 (he prefers GPT, in his own terms)
    "b1": ("shop", "build", CLAUDE, 1, [(1, -1)], True),
    "b2": ("shop", "build", CLAUDE, 2, [(2, -1)], False),
    "b3": ("shop", "build", GPT, 2, [(2, 1), (2, 1)], False),
    "b4": ("shop", "build", GPT, 1, [(2, 1)], False),
    "b5": ("shop", "build", GPT, 1, [], False),
    "b6": ("web", "general", GPT, 1, [(5, 2)], False),
}
ORDER = [*SHARED, *ALICE, *BOB]


def play(tracker: Tracker, plan: Plan, projects: dict[str, Path]) -> None:
    for sid, (project, agent, model, tools, commits, bug) in plan.items():
        index = ORDER.index(sid)
        tracker.at(f"2026-{10 + index % 2:02d}-{index + 1:02d}T09:00:00.000Z")  # two months: two partitions
        tracker.commits = 0x1000000 * (index + 1)
        tracker.calls = 1000 * (index + 1)
        tracker.session(sid, projects[project], agent, model, tools=tools, commits=commits, bug=bug)
        tracker.send("usage.recorded", {"sessionID": sid, "messageID": f"{sid}-m1", "cost": 0.01 * (index + 1),
                                        "durationMs": 1000, "tokens": {"input": 100 * (index + 1), "output": 7},
                                        "agent": {"id": agent, "provider": model[0], "model": model[1]}})
    if "a1" in plan:  # a subagent of a1: its work and commit count for a1's setup
        tracker.at("2026-10-03T10:00:00.000Z")
        tracker.commits = 0xF000000
        tracker.send("session.created", {"sessionID": "a1-helper", "parentID": "a1", "directory": str(projects["shop"]),
                                         "agent": {"id": "general", "provider": GPT[0], "model": GPT[1]}})
        tracker.tool("a1-helper")
        tracker.commit("a1-helper")
        tracker.send("session.deleted", {"sessionID": "a1-helper"})
    tracker.flush()


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("team")
    shop, web = make_projects(root)
    projects = {"shop": shop, "web": web}
    paths = {}
    for name, plan in (("alice", {**SHARED, **ALICE}), ("bob", {**SHARED, **BOB}),
                       ("merged", {**SHARED, **ALICE, **BOB})):
        tracker = Tracker(root / f"{name}.lmdb")
        play(tracker, plan, projects)
        tracker.close()
        paths[name] = root / f"{name}.lmdb"
    exports = root / "exports"
    for name in ("alice", "bob"):
        assert main(["export", "--database", str(paths[name]), "--format", "parquet", str(exports),
                     "--person", name]) == 0
    paths["exports"] = exports
    paths["root"] = root
    return paths


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def by_setup(setups: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(row["agent"], row["model"], row["stack"]): row for row in setups}


COMPARED = ("sessions", "commits", "xp", "userGrades", "agentGrades", "userGradeSum", "agentGradeSum", "bugs",
            "rank", "ranked", "toolCalls", "failedToolCalls", "endedSessions", "abandonedSessions", "reverts",
            "userGradeCounts", "agentGradeCounts", "lastUsed")


def assert_same_setups(team_setups: list[dict[str, Any]], report_setups: list[dict[str, Any]]) -> None:
    team_rows, report_rows = by_setup(team_setups), by_setup(report_setups)
    assert team_rows.keys() == report_rows.keys()
    for setup, expected in report_rows.items():
        got = team_rows[setup]
        for name in COMPARED:
            if name in expected:
                assert got[name] == expected[name], (setup, name)
        assert got["score"] == pytest.approx(expected["score"], abs=1e-9), setup
        assert got["usage"]["cost"] == pytest.approx(expected["usage"]["cost"], abs=1e-12)
        assert got["usage"]["sessions"] == expected["usage"]["sessions"]
        assert got["usage"]["tokens"] == expected["usage"]["tokens"]


def test_two_exports_in_one_folder_give_the_report_of_one_database_holding_both(
        team: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, merged = run_json(capsys, "report", "--database", str(team["merged"]))
    assert code == 0
    code, report = run_json(capsys, "team-report", str(team["exports"]))
    assert code == 0
    assert_same_setups(report["setups"], merged["setups"])
    # 2 shared + 4 + 6 root sessions, counted once each; the subagent's is a1's work, not a session
    assert sum(row["sessions"] for row in report["setups"]) == 12 == merged["totals"]["sessions"]
    assert {row["person"]: row["sessions"] for row in report["persons"]} == {"alice": 6, "bob": 6}
    claude = by_setup(report["setups"])[("build", "anthropic/claude-sonnet-4-5", "python/fastapi")]
    assert claude["commits"] == 1 + 3 + 2 + 1  # s1, a1 (+ its helper's), a2, b1, b2
    assert claude["persons"] == 2


def test_within_persons_a_harsh_grader_does_not_decide(team: dict[str, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _, report = run_json(capsys, "team-report", str(team["exports"]))
    rows = by_setup(report["setups"])
    claude = rows[("build", "anthropic/claude-sonnet-4-5", "python/fastapi")]
    gpt = rows[("build", "openai/gpt-5", "python/fastapi")]
    # Everyone's numbers: Alice's many 5s make Claude first. Within persons, only Bob (and the
    # shared sessions, which count for Alice) compared both...
    assert claude["rank"] == 1 and gpt["rank"] == 2
    persons = {entry["person"]: by_setup(entry["setups"]) for entry in report["persons"]}
    expected: dict[tuple[str, str, str], list[float]] = {}
    for person_rows in persons.values():
        shop = {k: r for k, r in person_rows.items() if k[2] == "python/fastapi"}
        if len(shop) < 2:
            continue
        weight = sum(r["sessions"] for r in shop.values())
        baseline = sum(r["score"] * r["sessions"] for r in shop.values()) / weight
        for k, r in shop.items():
            expected.setdefault(k, [0.0, 0.0])
            expected[k][0] += (r["score"] - baseline) * r["sessions"]
            expected[k][1] += r["sessions"]
    assert gpt["withinPerson"]["persons"] == 2 and gpt["withinPerson"]["sessions"] == 1 + 3
    for k, (total, sessions) in expected.items():
        assert rows[k]["withinPerson"]["delta"] == pytest.approx(total / sessions)
    # Bob finds GPT far better than Claude; Alice's one GPT session is a little worse than her Claude.
    assert persons["bob"][("build", "openai/gpt-5", "python/fastapi")]["score"] > \
        persons["bob"][("build", "anthropic/claude-sonnet-4-5", "python/fastapi")]["score"] + 10
    assert gpt["teamRank"] == 1 and claude["teamRank"] == 2
    assert {s["stack"]: s["teamBest"] for s in report["stacks"]}["python/fastapi"] == "build|openai/gpt-5"


def test_import_export_merges_without_losing_or_doubling(team: dict[str, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "desk.lmdb"
    code, first = run_json(capsys, "import-export", str(team["exports"]), "--database", str(target))
    assert code == 0
    assert first["added"]["sessions"] == 13  # 12 root sessions + the subagent's
    assert first["added"]["commits"] == 13 and first["added"]["bugs"] == 1
    # the shared sessions, commits and grades came twice (once per person): kept once
    assert first["alreadyPresent"]["sessions"] == 2 and first["alreadyPresent"]["commits"] == 2
    _, merged = run_json(capsys, "report", "--database", str(target))
    _, expected = run_json(capsys, "report", "--database", str(team["merged"]))
    assert_same_setups(merged["setups"], expected["setups"])
    before = dump(target)
    code, second = run_json(capsys, "import-export", str(team["exports"]), "--database", str(target))
    assert code == 0 and sum(second["added"].values()) == 0 and second["refreshedSessions"] == 0
    assert dump(target) == before


def test_importing_your_own_export_counts_nothing_twice(team: dict[str, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    own = tmp_path / "alice.lmdb"
    own.write_bytes(team["alice"].read_bytes())
    _, report_before = run_json(capsys, "report", "--database", str(own))
    # the JSONL export of the same database: every session, commit, grade and bug is there already
    jsonl = tmp_path / "alice.jsonl"
    assert main(["export", "--database", str(own), "--format", "jsonl", "-o", str(jsonl)]) == 0
    capsys.readouterr()
    before = dump(own)
    code, result = run_json(capsys, "import-export", str(jsonl), "--database", str(own))
    assert code == 0 and sum(result["added"].values()) == 0, result
    assert result["alreadyPresent"]["sessions"] == 7 and result["alreadyPresent"]["bugs"] == 0
    assert dump(own) == before
    _, report_after = run_json(capsys, "report", "--database", str(own))
    assert_same_setups(report_after["setups"], report_before["setups"])


def test_jsonl_export_imports_into_an_empty_database(team: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    jsonl = tmp_path / "bob.jsonl"
    assert main(["export", "--database", str(team["bob"]), "--format", "jsonl", "-o", str(jsonl)]) == 0
    target = tmp_path / "new.lmdb"
    code, result = run_json(capsys, "import-export", str(jsonl), "--database", str(target))
    assert code == 0 and result["added"]["sessions"] == 8 and result["added"]["bugs"] == 1
    _, got = run_json(capsys, "report", "--database", str(target))
    _, expected = run_json(capsys, "report", "--database", str(team["bob"]))
    assert_same_setups(got["setups"], expected["setups"])


def dump(database: Path) -> dict[str, list[tuple[str, Any]]]:
    with Store.open(BridgeConfig(database_path=str(database)), readonly=True) as store, store.read() as view:
        return {db: list(view.scan(db)) for db in ("sessions", "commits", "communication", "activities",
                                                   "projects", "agents")}


# -- the files ------------------------------------------------------------------------------------

def test_files_carry_the_versioned_schema_stable_ids_and_no_prompt_text(team: dict[str, Path]) -> None:
    sessions = sorted((team["exports"] / "sessions").glob("month=*/*.parquet"))
    assert {path.parent.name for path in sessions} == {"month=2026-10", "month=2026-11"}
    with Store.open(BridgeConfig(database_path=str(team["alice"])), readonly=True) as store, store.read() as view:
        alice_id = view.meta(DATABASE_ID_KEY)
    assert len(alice_id) == 32
    table = pq.read_table(team["exports"] / "sessions" / "month=2026-10" / f"{alice_id}.parquet")
    metadata = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert metadata[schema.VERSION_KEY] == "1" and metadata[schema.TABLE_KEY] == "sessions"
    assert metadata[schema.PERSON_KEY] == "alice" and metadata[schema.DATABASE_KEY] == alice_id
    assert table.column_names == schema.columns("sessions")
    rows = table.to_pylist()
    assert {row["database_id"] for row in rows} == {alice_id}
    assert all(row["title"] is None for row in rows)  # titles come from the first prompt
    helper = next(row for row in rows if row["session_id"] == "a1-helper")
    assert helper["root_session_id"] == "a1" and helper["is_subagent"]
    assert helper["credited_setups"] == [{"agent": "build", "model": "anthropic/claude-sonnet-4-5",
                                          "stack": "python/fastapi"}]


def test_default_person_is_a_pseudonym_and_since_is_incremental(team: dict[str, Path], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    import getpass

    out = tmp_path / "out"
    assert main(["export", "--database", str(team["bob"]), "--format", "parquet", str(out),
                 "--since", "2026-11-01"]) == 0
    err = capsys.readouterr().err
    files = sorted(out.glob("sessions/*/*.parquet"))
    assert [f.parent.name for f in files] == ["month=2026-11"] and "-since-" in files[0].name
    rows = pq.read_table(files[0]).to_pylist()
    assert {row["session_id"] for row in rows} == {"s2", "b2", "b4", "b6"}  # those created in November
    person = rows[0]["person"]
    assert person.startswith("person-") and len(person) == 15 and getpass.getuser() not in person
    assert f"as {person}" in err


def test_schema_doc_is_written_from_the_schema() -> None:
    doc = Path(__file__).resolve().parent.parent / "docs" / "schema.md"
    assert doc.read_text(encoding="utf-8") == schema.schema_markdown()


# -- tampered files: one clear error, nothing changed ------------------------------------------------

def _copy_exports(team: dict[str, Path], tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "exports"
    shutil.copytree(team["exports"], copy)
    return copy


def _rewrite(file: Path, change: Any) -> None:
    table = pq.read_table(file)
    pq.write_table(change(table), file)


def _with_version(table: Any) -> Any:
    metadata = dict(table.schema.metadata)
    metadata[schema.VERSION_KEY.encode()] = b"99"
    return table.replace_schema_metadata(metadata)


def _without_column(table: Any) -> Any:
    return table.drop_columns(["credited_agent"])


def _huge_person(table: Any) -> Any:
    index = table.column_names.index("person")
    return table.set_column(index, table.schema.field(index), pa.array(["x" * (schema.MAX_TEXT_BYTES + 1)] * len(table)))


def _without_ids(table: Any) -> Any:
    index = table.column_names.index("session_id")
    return table.set_column(index, table.schema.field(index), pa.array([None] * len(table), type=pa.string()))


@pytest.mark.parametrize(("table", "change", "message"), [
    ("sessions", _without_ids, "rows without session_id"),
    ("sessions", _with_version, "has schema version 99"),
    ("commits", _without_column, "lacks the column credited_agent"),
    ("sessions", _huge_person, f"over the {schema.MAX_TEXT_BYTES}"),
])
def test_a_tampered_file_is_one_clear_error_and_changes_nothing(
        team: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        table: str, change: Any, message: str) -> None:
    exports = _copy_exports(team, tmp_path)
    victim = sorted((exports / table).glob("*/*.parquet"))[-1]
    _rewrite(victim, change)
    code = main(["team-report", str(exports)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    # the CLI's contract: the error on one line, then one hint line
    first, *hints = err.splitlines()
    assert len(hints) <= 1 and all(hint.startswith("hint: ") for hint in hints), err
    assert message in first and str(victim) in first, err
    target = tmp_path / "target.lmdb"
    target.write_bytes(team["alice"].read_bytes())
    before = dump(target)
    code = main(["import-export", str(exports), "--database", str(target)])
    out, err = capsys.readouterr()
    first, *hints = err.splitlines()  # the error on one line, at most one hint line
    assert len(hints) <= 1 and all(hint.startswith("hint: ") for hint in hints), err
    assert code == 1 and message in first and str(victim) in first, err
    assert dump(target) == before


def test_the_commands_say_how_to_install_the_missing_extra(tmp_path: Path) -> None:
    script = ("import sys; sys.modules['duckdb'] = None; sys.modules['pyarrow'] = None\n"
              "from bridge.cli import main; sys.exit(main(sys.argv[1:]))")
    for argv in (["team-report", str(tmp_path)], ["import-export", str(tmp_path)],
                 ["export", "--format", "parquet", str(tmp_path / "out"), "--database", str(tmp_path / "x.lmdb")]):
        done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True,
                              env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
        assert done.returncode == 2, (argv, done.stderr)
        assert done.stderr.count("\n") == 1 and "pip install 'agent-tracker[team]'" in done.stderr


def test_the_bridge_and_the_base_commands_never_load_the_extra() -> None:
    code = ("import sys, bridge.rpc.server, bridge.report.build, bridge.cli, bridge.cli.team, bridge.team.report; "
            "print(sorted(m for m in ('pyarrow', 'duckdb') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_html_page_escapes_names(team: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "team.html"
    assert main(["team-report", str(team["exports"]), "--html", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and "Per person" in text and "alice" in text and "python/fastapi" in text


def test_an_incremental_export_beside_the_full_one_counts_nothing_twice(
        team: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exports = _copy_exports(team, tmp_path)
    _, before = run_json(capsys, "team-report", str(exports))
    assert main(["export", "--database", str(team["alice"]), "--format", "parquet", str(exports),
                 "--person", "alice", "--since", "2026-10-01"]) == 0
    assert len(list(exports.glob("sessions/*/*-since-*.parquet"))) == 2
    _, after = run_json(capsys, "team-report", str(exports))
    assert_same_setups(after["setups"], before["setups"])
    assert after["counts"]["sessions"] == before["counts"]["sessions"] + 7  # read, and kept once


def test_configuration_versions_are_exported_without_prompt_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Where the database has a ``configs`` sub-database (issue 24), its versions are exported, prompts as hashes."""
    import bridge.store

    monkeypatch.setattr(bridge.store, "SUB_DATABASES", (*bridge.store.SUB_DATABASES, "configs"))
    tracker = Tracker(tmp_path / "db.lmdb")
    shop, _ = make_projects(tmp_path)
    tracker.session("c1", shop, "build", CLAUDE)
    version = {"agentId": "build", "firstSeenAt": "2026-10-01T09:00:00.000Z", "definition": {
        "prompt": "You are a careful engineer.", "temperature": 0.2}}
    tracker.store.write(lambda view: view.put("configs", "build\x00v1", version))
    tracker.close()
    for flag, expect_prompt in (([], False), (["--include-prompts"], True)):
        out = tmp_path / f"out{len(flag)}"
        assert main(["export", "--database", str(tmp_path / "db.lmdb"), "--format", "parquet", str(out), *flag]) == 0
        rows = pq.read_table(next(out.glob("configs/month=2026-10/*.parquet"))).to_pylist()
        assert [row["config_id"] for row in rows] == ["build\x1fv1"]
        data = json.loads(rows[0]["data"])["definition"]
        if expect_prompt:
            assert data == version["definition"]
        else:
            assert data == {"temperature": 0.2, "promptLength": 27,
                            "promptSha256": __import__("hashlib").sha256(b"You are a careful engineer.").hexdigest()}
    capsys.readouterr()


def test_a_newer_export_of_the_same_machine_refreshes_its_imported_sessions(
        team: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    laptop = tmp_path / "laptop.lmdb"
    laptop.write_bytes(team["alice"].read_bytes())
    desktop = tmp_path / "desktop.lmdb"
    exports = tmp_path / "shared"
    assert main(["export", "--database", str(laptop), "--format", "parquet", str(exports), "--person", "alice"]) == 0
    assert main(["export", "--database", str(team["bob"]), "--format", "parquet", str(exports), "--person", "bob"]) == 0
    code, first = run_json(capsys, "import-export", str(exports), "--person", "alice", "--database", str(desktop))
    assert code == 0 and first["added"]["sessions"] == 7  # alice's only: bob's rows stay out
    # the laptop goes on with a3 (three more tool calls), and exports again
    tracker = Tracker(laptop)
    tracker.at("2026-12-01T09:00:00.000Z")
    tracker.calls = 90_000
    for _ in range(3):
        tracker.tool("a3")
    tracker.close()
    assert main(["export", "--database", str(laptop), "--format", "parquet", str(exports), "--person", "alice"]) == 0
    code, second = run_json(capsys, "import-export", str(exports), "--person", "alice", "--database", str(desktop))
    assert code == 0 and second["refreshedSessions"] == 1 and sum(second["added"].values()) == 0
    with Store.open(BridgeConfig(database_path=str(desktop)), readonly=True) as store, store.read() as view:
        a3 = view.get("sessions", "a3")
    assert a3["toolCalls"] == 2 + 3 and a3["importedFrom"]["person"] == "alice"
    _, desk = run_json(capsys, "report", "--database", str(desktop))
    _, lap = run_json(capsys, "report", "--database", str(laptop))
    assert_same_setups(desk["setups"], lap["setups"])


def test_the_scale_bench_writes_what_team_report_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """bench/bench_team.py's generated team (here 2 people x 500 sessions) is a valid export, read exactly."""
    from bench.bench_team import generate_team

    counts = generate_team(tmp_path / "team", 2, 500)
    code, report = run_json(capsys, "team-report", str(tmp_path / "team"))
    assert code == 0
    assert sum(row["sessions"] for row in report["setups"]) == counts["sessions"] == 1000
    assert sum(row["toolCalls"] for row in report["setups"]) == counts["toolCalls"]
    assert sum(row["commits"] for row in report["setups"]) == counts["commits"]
    assert sum(row["userGrades"] + row["agentGrades"] for row in report["setups"]) == counts["grades"]
    assert sum(row["bugs"] for row in report["setups"]) == counts["bugs"]
    assert len(report["persons"]) == 2
