"""The older TypeScript plugin's lmdb-js databases are imported exactly, additively, idempotently.

The sources are tests/fixtures/lmdbjs/*.mdb, written by generate.mjs through the npm ``lmdb``
package called exactly as the plugin's src/lmdb-database.ts did, with records of its
src/types.ts shapes; expected.json holds what lmdb-js reads back from them. Every test goes
through the real CLI (``bridge.cli.main`` in-process, ``python -m bridge`` as a subprocess) or
the real bridge process, with HOME and XDG_CONFIG_HOME in temp dirs (tests/conftest.py).

The expected records below are built from expected.json by this file's own reading of the
mapping documented in protocol/storage.md, not by the importer's code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from support import bridges
from support.bridges import start_bridge

from bridge.cli import main
from bridge.config import BridgeConfig
from bridge.migration.importer import LEGACY_RELATIVE
from bridge.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "lmdbjs"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))["fixtures"]
FLAT = ["flat.mdb", "flat-lmdb2.mdb", "flat-16k.mdb"]
SUBDBS = ["subdbs.mdb", "subdbs-uncompressed.mdb"]
NODE = shutil.which("node")
HAS_NODE_MODULES = (FIXTURES / "node_modules" / "lmdb" / "package.json").exists()
needs_node = pytest.mark.skipif(not (NODE and HAS_NODE_MODULES),
                                reason="needs node and tests/fixtures/lmdbjs/node_modules (npm ci there)")

# The plugin's record types (src/types.ts), every field.
AGENT_FIELDS = {"id", "name", "model", "scope", "skill_points", "experience_points", "communication_score",
                "total_commits", "total_bugs", "active", "created_at", "updated_at"}
COMMIT_FIELDS = {"agent_id", "commit_hash", "project_path", "task_description", "experience_gained",
                 "communication_score_change", "timestamp"}
GRADE_FIELDS = {"agent_id", "commit_hash", "project_path", "grade", "timestamp"}  # + reason?
RETRO_FIELDS = {"commit", "timestamp", "task", "agent_grade", "user_grade", "score_before", "score_after",
                "agent_note", "user_note"}
ACTIVITY_FIELDS = {"timestamp", "task", "actions", "outcome", "decisions"}
PROJECT_FIELDS = {"path", "language", "framework", "scope", "dependencies", "manifestType", "classifiedAt",
                  "agentsmdHash"}
MIGRATION_FIELDS = {"sourcePath", "version", "timestamp", "entriesMigrated"}
GRADE_NAMES = {-1: "bad", 1: "neutral", 2: "good", 5: "excellence"}


# -- expected.json → what the plugin stored → what we must export ------------------------------------------

def iso(ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)  # exact, no float
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stored(value: Any) -> Any:
    """expected.json's tagged values → JSON values (Dates as our ISO strings)."""
    if isinstance(value, dict):
        if value.get("$") == "date":
            return iso(value["v"])
        assert "$" not in value, f"the plugin's records hold no {value}"
        return {k: stored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [stored(v) for v in value]
    return value


def source_records(fixture: dict[str, Any]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """table -> [(key in the source, without the flat prefix, record)] of a plugin database."""
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    prefixes = {"agent:": "agents", "commit:": "commits", "communication:": "communication"}
    for database in fixture["databases"]:
        for entry in database["entries"]:
            if isinstance(entry["key"], dict):  # {"$": "symbol"}: msgpackr's shared structures
                continue
            if database["name"] is None:
                prefix = next(p for p in prefixes if entry["key"].startswith(p))
                table, source_key = prefixes[prefix], entry["key"][len(prefix):]
            else:
                table, source_key = database["name"], entry["key"]
            found.setdefault(table, []).append((source_key, stored(entry["value"])))
    return found


class Expected:
    """Everything one plugin database must become, record by record."""

    def __init__(self, fixture: dict[str, Any], source: Path, existing: set[str] = frozenset()):
        records = source_records(fixture)
        self.source = str(source)
        self.records = records
        self.models = {key: v["model"] for key, v in records.get("agents", []) if v["model"] not in ("", "unknown")}
        self.stacks = {}
        for _, v in records.get("projects", []):
            if v["language"] != "unknown":
                self.stacks[v["path"]] = v["language"] + ("" if v["framework"] == "unknown" else "/" + v["framework"])
        self.agents = [self.agent(k, v) for k, v in records.get("agents", [])]
        self.commits = [self.commit(v) for _, v in records.get("commits", [])]
        # the same stored event under several keys (the plugin's own migration copied them) is one grade
        unique = {json.dumps(v, sort_keys=True): v for _, v in records.get("communication", [])}
        self.grade_copies = len(records.get("communication", [])) - len(unique)
        self.grades = [self.grade(v) for v in unique.values()]
        self.retrospectives = [self.retrospective(k, v) for k, v in records.get("retrospectives", [])]
        self.activities = [self.activity(k, v) for k, v in records.get("activities", [])]
        self.projects = [self.project(v) for _, v in records.get("projects", [])]
        self.old_migrations = [self.old_migration(v) for _, v in records.get("migrations", [])]

    def stack(self, path: str) -> str:
        assert not Path(path).exists()  # so the stack comes from the source's profile, or is unknown
        return self.stacks.get(path, "unknown")

    def model(self, agent_id: str) -> dict[str, str]:
        return {"model": self.models[agent_id]} if agent_id in self.models else {}

    def agent(self, source_key: str, v: dict[str, Any]) -> dict[str, Any]:
        assert set(v) == AGENT_FIELDS and v["id"] == source_key
        return {"table": "agents", "id": v["id"], "skillPoints": v["skill_points"],
                "experiencePoints": v["experience_points"], "communicationScore": v["communication_score"],
                "totalCommits": v["total_commits"], "totalBugs": v["total_bugs"], "totalPushes": 0,
                "halted": v["skill_points"] <= 0, "createdAt": v["created_at"], "updatedAt": v["updated_at"],
                "migratedFrom": self.source,
                "legacy": {"name": v["name"], "model": v["model"], "scope": v["scope"], "active": v["active"]}}

    def commit(self, v: dict[str, Any]) -> dict[str, Any]:
        assert set(v) == COMMIT_FIELDS
        return {"table": "commits", "hash": v["commit_hash"], "projectPath": v["project_path"],
                "stack": self.stack(v["project_path"]), "agentId": v["agent_id"], **self.model(v["agent_id"]),
                "taskDescription": v["task_description"], "createdAt": v["timestamp"], "source": "migration",
                "migratedFrom": self.source,
                "legacy": {"experience_gained": v["experience_gained"],
                           "communication_score_change": v["communication_score_change"]}}

    def grade(self, v: dict[str, Any]) -> dict[str, Any]:
        assert set(v) - {"reason"} == GRADE_FIELDS
        return {"table": "grades", "createdAt": v["timestamp"], "agentId": v["agent_id"],
                "projectPath": v["project_path"], "stack": self.stack(v["project_path"]),
                "commitHash": v["commit_hash"], "grade": v["grade"], "gradeName": GRADE_NAMES[v["grade"]],
                "grader": "unknown", **({"reason": v["reason"]} if "reason" in v else {}),
                **self.model(v["agent_id"]), "source": "migration", "migratedFrom": self.source}

    def retrospective(self, source_key: str, v: dict[str, Any]) -> dict[str, Any]:
        assert set(v) == RETRO_FIELDS and source_key.endswith(":" + v["commit"])
        return {"table": "retrospectives", "agentId": source_key[: -len(v["commit"]) - 1],
                "commitHash": v["commit"], "createdAt": v["timestamp"], "migratedFrom": self.source,
                "legacy": {name: v[name] for name in ("task", "agent_grade", "user_grade", "score_before",
                                                      "score_after", "agent_note", "user_note")}}

    def activity(self, source_key: str, v: dict[str, Any]) -> dict[str, Any]:
        assert set(v) == ACTIVITY_FIELDS and source_key.endswith(":" + v["timestamp"])
        return {"table": "activities", "agentId": source_key[: -len(v["timestamp"]) - 1], "kind": "activity",
                "createdAt": v["timestamp"], "migratedFrom": self.source,
                "legacy": {name: v[name] for name in ("task", "actions", "outcome", "decisions")}}

    def project(self, v: dict[str, Any]) -> dict[str, Any]:
        assert set(v) == PROJECT_FIELDS
        stack = {"stack": self.stacks[v["path"]]} if v["path"] in self.stacks else {}
        return {"table": "projects", "path": v["path"], **stack, "language": v["language"],
                "framework": v["framework"], "classifiedAt": v["classifiedAt"], "migratedFrom": self.source,
                "legacy": {name: v[name] for name in ("scope", "dependencies", "manifestType", "agentsmdHash")}}

    def old_migration(self, v: dict[str, Any]) -> dict[str, Any]:
        assert set(v) == MIGRATION_FIELDS
        return {"sourcePath": v["sourcePath"], "layout": "typescript-plugin", "version": v["version"],
                "finishedAt": v["timestamp"], "migratedFrom": self.source,
                "legacy": {"entriesMigrated": v["entriesMigrated"]}}

    def exported(self) -> dict[str, list[dict[str, Any]]]:
        return {"agents": self.agents, "projects": self.projects, "commits": self.commits, "grades": self.grades,
                "activities": self.activities, "retrospectives": self.retrospectives}

    def counts(self) -> dict[str, int]:
        return {"agents": len(self.agents), "projects": len(self.projects), "commits": len(self.commits),
                "communication": len(self.grades), "retrospectives": len(self.retrospectives),
                "activities": len(self.activities), "migrations": len(self.old_migrations)}


def shape(value: Any) -> Any:
    """Types all the way down: 1 == 1.0 and True == 1 in Python, but not in a round trip."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def assert_exact(actual: Any, expected: Any, where: str = "") -> None:
    assert actual == expected, where
    assert shape(actual) == shape(expected), where


def by_content(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: json.dumps(r, sort_keys=True))


# -- running the CLI ------------------------------------------------------------------------------------

def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = cli(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def export(capsys: pytest.CaptureFixture[str], database: Path) -> dict[str, list[dict[str, Any]]]:
    code, out, err = cli(capsys, "export", "--format", "jsonl", "--database", str(database))
    assert code == 0, err
    tables: dict[str, list[dict[str, Any]]] = {}
    for line in out.splitlines():
        record = json.loads(line)
        tables.setdefault(record["table"], []).append(record)
    return tables


def words(output: str) -> str:
    """Rich's table output as plain words: box drawing removed, whitespace collapsed."""
    return " ".join(re.sub("[\u2500-\u257f]", " ", output).split())


def python_m_bridge(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", *argv], capture_output=True, text=True,
                          env=bridges.bridge_env(home), timeout=120)


def project_with(tmp_path: Path, fixture: str, name: str = "project") -> tuple[Path, Path]:
    """A project folder holding ``fixture`` where the plugin's ``~`` bug put its database."""
    project = tmp_path / name
    source = project / LEGACY_RELATIVE
    source.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / fixture, source)
    return project, source


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def stored_tables(database: Path, *tables: str) -> dict[str, list[tuple[str, Any]]]:
    with Store.open(BridgeConfig(database_path=str(database)), readonly=True) as store, store.read() as view:
        return {table: list(view.scan(table)) for table in tables}


def write_plugin_db(path: Path, records: dict[str, Any]) -> dict[str, Any]:
    """A plugin database of the given records, written by generate.mjs with the plugin's own calls."""
    spec = path.with_suffix(".json")
    spec.write_text(json.dumps(records), encoding="utf-8")
    result = subprocess.run([NODE, str(FIXTURES / "generate.mjs"), "--plugin-db", str(path), "--records", str(spec)],
                            cwd=FIXTURES, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout)


def date(ms: int) -> dict[str, Any]:
    return {"$": "date", "v": ms}


def agent_data(agent_id: str, model: str, sp: float = 1, **more: Any) -> dict[str, Any]:
    return {"id": agent_id, "name": agent_id, "model": model, "scope": "global", "skill_points": sp,
            "experience_points": 10, "communication_score": 60, "total_commits": 1, "total_bugs": 0,
            "active": True, "created_at": date(1714552200123), "updated_at": date(1714552200123), **more}


def commit_data(agent_id: str, project: str, commit_hash: str, ms: int) -> dict[str, Any]:
    return {"agent_id": agent_id, "commit_hash": commit_hash, "project_path": project,
            "task_description": "task", "experience_gained": 5, "communication_score_change": 0,
            "timestamp": date(ms)}


# -- the fixtures cover what real histories hold -----------------------------------------------------------------

def test_fixtures_hold_the_awkward_values_of_real_histories(tmp_path: Path) -> None:
    flat, subdbs = Expected(EXPECTED["flat.mdb"], tmp_path), Expected(EXPECTED["subdbs.mdb"], tmp_path)
    agents = [a for e in (flat, subdbs) for a in e.agents]
    assert {a["skillPoints"] for a in agents} >= {2.7, 0.7, -0.5, 0, -1}  # fractional, zero, negative
    assert {a["communicationScore"] for a in agents} >= {-3, -1.5, 0.30000000000000004}
    assert any(a["legacy"]["active"] is False and a["skillPoints"] > 0 for a in agents)
    dates = {a["createdAt"] for a in agents} | {c["createdAt"] for e in (flat, subdbs) for c in e.commits}
    assert {"1969-07-20T20:17:40.000Z", "0001-01-01T00:00:00.000Z", "2200-01-01T00:00:00.123Z",
            "2106-02-07T06:28:16.000Z"} <= dates
    paths = {c["projectPath"] for c in flat.commits}
    assert "C:\\Users\\dev\\repo:with:colons" in paths and "/Users/李雷/代码/移动应用" in paths
    assert any("reason" not in g for g in flat.grades) and any("reason" in g for g in flat.grades)
    assert subdbs.grade_copies == 6 and flat.grade_copies == 0
    assert all(e.records.keys() == {"agents", "commits", "communication"} for e in (flat,))
    assert subdbs.records.keys() == {"agents", "commits", "communication", "retrospectives", "activities",
                                     "migrations", "projects"}


# -- every record round-trips --------------------------------------------------------------------------------------

def assert_round_trip(capsys: pytest.CaptureFixture[str], tmp_path: Path, fixture_file: Path,
                      fixture: dict[str, Any]) -> None:
    """migrate → status --json / export --format jsonl gives back every record of ``fixture``."""
    project = tmp_path / "project"
    source = project / LEGACY_RELATIVE
    source.parent.mkdir(parents=True)
    shutil.copy(fixture_file, source)
    database = tmp_path / "central.lmdb"
    expected = Expected(fixture, source)
    result = cli_json(capsys, "migrate", "--database", str(database), str(project))
    (wire,) = result["results"]
    (summary,) = wire["sources"]
    assert summary["layout"] == ("flat" if fixture["layout"] == "flat" else "subdatabases")
    assert summary["imported"] == expected.counts() and wire["imported"] == sum(expected.counts().values())
    assert (summary["errors"], summary["skippedAgents"], summary["alreadyPresent"]) == ([], [], expected.grade_copies)

    # status --json: every agent's sheet, exactly as stored
    sheets = {row["agentId"]: row for row in cli_json(capsys, "status", "--database", str(database))["agents"]}
    assert sorted(sheets) == sorted(a["id"] for a in expected.agents)
    for agent in expected.agents:
        sheet = sheets[agent["id"]]
        assert_exact({k: sheet[k] for k in ("skillPoints", "experiencePoints", "communicationScore", "totalCommits",
                                            "totalBugs", "totalPushes", "halted", "createdAt", "updatedAt")},
                     {k: agent[k] for k in ("skillPoints", "experiencePoints", "communicationScore", "totalCommits",
                                            "totalBugs", "totalPushes", "halted", "createdAt", "updatedAt")},
                     agent["id"])

    # export --format jsonl: every record, field for field (unmapped fields in `legacy`)
    exported = export(capsys, database)
    for table, records in expected.exported().items():
        assert_exact(by_content(exported.get(table, [])), by_content(records), table)
    assert set(exported) <= set(expected.exported())  # nothing else was written (no sessions, ...)

    # the plugin's own migration records are kept too (our migrations table is not exported)
    migrations = [record for _, record in stored_tables(database, "migrations")["migrations"]
                  if record["layout"] == "typescript-plugin"]
    assert_exact(by_content(migrations), by_content(expected.old_migrations))


@pytest.mark.parametrize("fixture", FLAT + SUBDBS)
def test_every_record_round_trips_through_migrate_status_and_export(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, fixture: str) -> None:
    assert_round_trip(capsys, tmp_path, FIXTURES / fixture, EXPECTED[fixture])


def test_every_record_of_freshly_regenerated_fixtures_round_trips(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The same with fixtures written right now by the real npm lmdb (as CI does: there
    AGENT_TRACKER_REGENERATE_FIXTURES=1 makes this mandatory)."""
    if os.environ.get("AGENT_TRACKER_REGENERATE_FIXTURES") == "1":
        assert NODE and HAS_NODE_MODULES, "AGENT_TRACKER_REGENERATE_FIXTURES=1 needs node and npm ci in " \
                                          "tests/fixtures/lmdbjs"
    elif not (NODE and HAS_NODE_MODULES):
        pytest.skip("needs node and tests/fixtures/lmdbjs/node_modules (npm ci there)")
    out = tmp_path / "regenerated"
    subprocess.run([NODE, str(FIXTURES / "generate.mjs"), "--out", str(out), "--only", ",".join(FLAT + SUBDBS)],
                   cwd=FIXTURES, capture_output=True, text=True, timeout=600, check=True)
    regenerated = json.loads((out / "expected.json").read_text(encoding="utf-8"))["fixtures"]
    for name in FLAT + SUBDBS:
        assert_round_trip(capsys, tmp_path / name, out / name, regenerated[name])


def test_report_shows_migrated_commits_and_grades_under_their_setups(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    project, source = project_with(tmp_path, "subdbs.mdb")
    database = tmp_path / "central.lmdb"
    expected = Expected(EXPECTED["subdbs.mdb"], source)
    cli_json(capsys, "migrate", "--database", str(database), str(project))
    report = cli_json(capsys, "report", "--database", str(database))

    # setup = (agent, the agent record's model, the project's stack)
    def setup_of(record: dict[str, Any]) -> tuple[str, str, str]:
        return record["agentId"], record.get("model", "unknown-model"), record["stack"]

    want: dict[tuple[str, str, str], dict[str, int]] = {}
    for kind, records in (("commits", expected.commits), ("grades", expected.grades)):
        for record in records:
            want.setdefault(setup_of(record), {"commits": 0, "grades": 0})[kind] += 1
    got = {(row["agent"], row["model"], row["stack"]): row for row in report["setups"]}
    assert set(got) == set(want)
    for setup, counts in want.items():
        row = got[setup]
        assert (row["commits"], row["imported"]) == (counts["commits"], counts), setup
        assert (row["sessions"], row["ranked"]) == (0, False)  # no sessions came with the old history
    assert report["totals"]["commits"] == len(expected.commits) == report["imported"]["commits"]
    assert report["totals"]["grades"] == len(expected.grades) == report["imported"]["grades"]
    # the stacks came from the source's project profiles (the folders do not exist here)
    assert {row["stack"] for row in report["setups"]} == {"typescript/next", "php/laravel", "python", "unknown"}
    code, text, _ = cli(capsys, "report", "--database", str(database))
    assert code == 0 and (f"Includes {len(expected.commits)} commits and {len(expected.grades)} grades "
                          f"imported from the older TypeScript plugin") in words(text)

    # status AGENT: the migrated totals and the setups they count under
    agent = next(a for a in expected.agents if a["id"] == "build")
    status = cli_json(capsys, "status", "build", "--database", str(database))
    assert_exact({k: status["agent"][k] for k in ("skillPoints", "experiencePoints", "communicationScore",
                                                  "totalCommits", "totalBugs", "halted")},
                 {k: agent[k] for k in ("skillPoints", "experiencePoints", "communicationScore", "totalCommits",
                                        "totalBugs", "halted")})
    mine = {setup: counts for setup, counts in want.items() if setup[0] == "build"}
    assert {(row["agent"], row["model"], row["stack"]): row["imported"] for row in status["setups"]} == mine


@needs_node
def test_a_stack_comes_from_the_profile_else_the_folder_else_unknown(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    profiled, classified, gone = tmp_path / "profiled", tmp_path / "api", tmp_path / "deleted"
    for folder in (profiled, classified):
        folder.mkdir()
    (classified / "pyproject.toml").write_text('[project]\ndependencies = ["fastapi"]\n')
    (profiled / "pyproject.toml").write_text('[project]\ndependencies = ["django"]\n')  # the profile wins
    source = tmp_path / "old.lmdb"
    write_plugin_db(source, {
        "layout": "subdbs",
        "agents": [["build", agent_data("build", "anthropic/claude-sonnet-4-5")]],
        "commits": [[str(p), h, commit_data("build", str(p), h, 1714552200123 + i)]
                    for i, (p, h) in enumerate(((profiled, "a" * 40), (classified, "b" * 40), (gone, "c" * 40)))],
        "projects": [[str(profiled), {"path": str(profiled), "language": "typescript", "framework": "next",
                                      "scope": "frontend", "dependencies": ["next"], "manifestType": "package.json",
                                      "classifiedAt": "2024-05-01T08:30:00.000Z", "agentsmdHash": ""}]],
    })
    database = tmp_path / "central.lmdb"
    cli_json(capsys, "migrate", "--database", str(database), str(source))
    report = cli_json(capsys, "report", "--database", str(database))
    rows = {row["stack"]: (row["agent"], row["model"], row["commits"], row["imported"]) for row in report["setups"]}
    model = "anthropic/claude-sonnet-4-5"
    assert rows == {stack: ("build", model, 1, {"commits": 1, "grades": 0})
                    for stack in ("typescript/next", "python/fastapi", "unknown")}


# -- additive and idempotent -------------------------------------------------------------------------------------

def test_second_run_adds_nothing_and_sources_stay_byte_and_mtime_identical(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    project, source = project_with(tmp_path, "subdbs.mdb")
    lock = source.with_name(source.name + "-lock")
    lock.write_bytes(b"lmdb-js lock file stand-in")
    before = fingerprint(source), fingerprint(lock)
    database = tmp_path / "central.lmdb"
    first = cli_json(capsys, "migrate", "--database", str(database), str(project))
    assert first["results"][0]["imported"] == 311
    snapshot = export(capsys, database)
    second = cli_json(capsys, "migrate", "--database", str(database), str(project))
    (again,) = second["results"][0]["sources"]
    assert second["results"][0]["imported"] == 0 and again["upToDate"] is True
    # the same content from another copy of the file (another path, another fingerprint): nothing new
    copy = tmp_path / "copy.lmdb"
    shutil.copy(FIXTURES / "subdbs.mdb", copy)
    third = cli_json(capsys, "migrate", "--database", str(database), str(copy))
    (other,) = third["results"][0]["sources"]
    assert third["results"][0]["imported"] == 0 and other["skippedAgents"] == []
    assert other["alreadyPresent"] == 311 + 6  # every record, and the six copied grade events again
    assert export(capsys, database) == snapshot
    assert (fingerprint(source), fingerprint(lock)) == before


def test_agents_already_in_our_database_are_kept_and_listed_with_their_totals(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    central, flat = tmp_path / "central-old.lmdb", tmp_path / "project-old.lmdb"
    shutil.copy(FIXTURES / "subdbs.mdb", central)
    shutil.copy(FIXTURES / "flat-lmdb2.mdb", flat)
    database = tmp_path / "central.lmdb"
    ours = Expected(EXPECTED["subdbs.mdb"], central)
    theirs = Expected(EXPECTED["flat-lmdb2.mdb"], flat)
    cli_json(capsys, "migrate", "--database", str(database), str(central))
    result = cli_json(capsys, "migrate", "--database", str(database), str(flat))
    (summary,) = result["results"][0]["sources"]
    both = {a["id"] for a in ours.agents} & {a["id"] for a in theirs.agents}
    assert len(both) == 12  # flat-lmdb2.mdb's twelve agents, all known from the central database already
    listed = {a["agentId"]: a for a in summary["skippedAgents"]}
    assert sorted(listed) == sorted(both)
    for agent in theirs.agents:
        assert_exact(listed[agent["id"]], {
            "agentId": agent["id"], "entry": f"main['agent:{agent['id']}']",
            **{k: agent[k] for k in ("skillPoints", "experiencePoints", "communicationScore", "totalCommits",
                                     "totalBugs", "halted")}})
    assert summary["imported"]["agents"] == 0
    assert summary["imported"]["commits"] == len(theirs.commits)  # their history is still imported
    sheets = {row["agentId"]: row for row in cli_json(capsys, "status", "--database", str(database))["agents"]}
    for agent in ours.agents:  # ours kept, untouched
        assert_exact(sheets[agent["id"]]["communicationScore"], agent["communicationScore"])
    # the table says so too
    shutil.copy(FIXTURES / "flat-lmdb2.mdb", tmp_path / "again.lmdb")
    code, out, _ = cli(capsys, "migrate", "--database", str(database), str(tmp_path / "again.lmdb"))
    text = words(out)
    assert code == 0 and "Agents already in the database: kept as they are" in text
    assert "12 agents were already in the database" in text
    build = listed["build"]
    assert f"build {build['skillPoints']:g} {build['experiencePoints']:g} {build['communicationScore']:g}" in text


def test_dry_run_counts_without_writing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    project, source = project_with(tmp_path, "subdbs.mdb")
    database = tmp_path / "central.lmdb"
    planned = cli_json(capsys, "migrate", "--dry-run", "--database", str(database), str(project))["results"][0]
    assert planned["dryRun"] is True and planned["imported"] == 311
    assert planned["sources"][0]["imported"] == Expected(EXPECTED["subdbs.mdb"], source).counts()
    assert all(not rows for rows in stored_tables(database, "agents", "commits", "communication",
                                                  "migrations").values())


def test_a_migrated_agent_keeps_its_values_until_its_next_event_and_its_legacy_fields_after(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    project, source = project_with(tmp_path, "flat.mdb")
    database = tmp_path / "central.lmdb"
    cli_json(capsys, "migrate", "--database", str(database), str(project))
    halted = next(a for a in Expected(EXPECTED["flat.mdb"], source).agents if a["skillPoints"] < 0)
    code, out, err = cli(capsys, "reinstate", halted["id"], "--database", str(database))
    assert code == 0, err
    (after,) = [r for r in export(capsys, database)["agents"] if r["id"] == halted["id"]]
    assert after["skillPoints"] == 1 and after["halted"] is False  # our rules, from this event on
    assert (after["legacy"], after["migratedFrom"]) == (halted["legacy"], halted["migratedFrom"])


# -- what is not the plugin's is reported per entry, never guessed -----------------------------------------------

def test_entries_of_unknown_databases_are_reported_one_by_one(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "misc.lmdb"
    shutil.copy(FIXTURES / "misc.mdb", source)
    database = tmp_path / "central.lmdb"
    code, out, _ = cli(capsys, "migrate", "--json", "--database", str(database), str(source))
    assert code == 1  # entries could not be imported
    (summary,) = json.loads(out)["results"][0]["sources"]
    assert sum(summary["imported"].values()) == 0
    entries = sum(1 for db in EXPECTED["misc.mdb"]["databases"] for e in db["entries"]
                  if not str(e["key"].get("v") if isinstance(e["key"], dict) else "").startswith("structures:"))
    # one error per entry (those that cannot even be decoded say so), plus the reader's notes on
    # the dupSort database and on the undecodable value
    assert summary["errorCount"] == entries + 2
    assert summary["skipped"] == 3  # the shared-structures records of three sub-databases
    assert "keys[Symbol('meta')]: sub-database 'keys' is not one the TypeScript plugin wrote; not imported" \
        in summary["errors"]  # a symbol that is not msgpackr's is an entry like any other
    assert "bundled['doc']: sub-database 'bundled' is not one the TypeScript plugin wrote; not imported" \
        in summary["errors"]
    assert len(stored_tables(database, "migrations")["migrations"]) == 1  # the source was still processed


@needs_node
def test_records_without_the_plugins_fields_are_reported_and_the_rest_imported(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "old.lmdb"
    write_plugin_db(source, {
        "layout": "subdbs",
        "agents": [["build", agent_data("build", "openai/gpt-5")],
                   # the invented camelCase shape this importer once expected
                   ["camel", {"id": "camel", "skillPoints": 3, "experiencePoints": 0, "communicationScore": 60}]],
        "commits": [["/p", "a" * 40, commit_data("build", "/p", "a" * 40, 1714552200123)],
                    ["/p", "b" * 40, {k: v for k, v in commit_data("build", "/p", "b" * 40, 0).items()
                                      if k != "project_path"}]],
        "communication": [[{"agent_id": "build", "commit_hash": "a" * 40, "project_path": "/p", "grade": 3,
                            "timestamp": date(1714552200123)}, 1714552300000]],
    })
    database = tmp_path / "central.lmdb"
    code, out, _ = cli(capsys, "migrate", "--json", "--database", str(database), str(source))
    (summary,) = json.loads(out)["results"][0]["sources"]
    assert code == 1
    assert summary["errors"] == [
        "agents['camel']: not an AgentData record of the TypeScript plugin: field 'skill_points' is missing "
        "(fields: id, skillPoints, experiencePoints, communicationScore); not imported",
        f"commits['/p:{'b' * 40}']: not a CommitData record of the TypeScript plugin: field 'project_path' is "
        "missing (fields: agent_id, commit_hash, task_description, experience_gained, "
        "communication_score_change, timestamp); not imported",
        f"communication['build:{'a' * 40}:1714552300000']: grade 3 is not one of -1, 1, 2, 5; not imported"]
    assert summary["imported"] == {"agents": 1, "projects": 0, "commits": 1, "communication": 0,
                                   "retrospectives": 0, "activities": 0, "migrations": 0}


def test_corrupt_source_is_an_error_not_a_crash(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "broken.lmdb"
    source.write_bytes(b"\x00" * 8192)
    code, out, _ = cli(capsys, "migrate", "--json", "--database", str(tmp_path / "central.lmdb"), str(source))
    (summary,) = json.loads(out)["results"][0]["sources"]
    assert code == 1 and summary["errors"][0].startswith("cannot read:")
    assert sum(summary["imported"].values()) == 0
    assert source.read_bytes() == b"\x00" * 8192


# -- the real subprocess CLI and the bridge's automatic import ------------------------------------------------------

def test_python_m_bridge_migrate_shows_a_summary(isolated_home: Path, tmp_path: Path) -> None:
    project, _ = project_with(tmp_path, "subdbs.mdb")
    database = tmp_path / "central.lmdb"
    real = python_m_bridge(isolated_home, "migrate", "--database", str(database), str(project))
    assert real.returncode == 0, real.stderr
    text = words(real.stdout)
    assert "Imported 311 records from 1 old database." in text
    assert "subdatabases 15 80 160 20 30 4 2 6 0" in text  # agents .. old migrations, already there, errors


async def test_the_bridge_imports_a_project_database_on_initialize_like_the_cli(
        isolated_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project, source = project_with(tmp_path, "subdbs.mdb")
    before = fingerprint(source)
    bridge = await start_bridge(isolated_home)
    try:
        result = await bridge.initialize(project)
        assert result["migration"]["imported"] == 311
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    again = await start_bridge(isolated_home)
    try:
        assert (await again.initialize(project))["migration"] is None  # already imported: silent
        assert await again.shutdown_and_exit() == 0
    finally:
        again.kill()
    assert fingerprint(source) == before
    by_bridge = isolated_home / ".config" / "opencode" / "agent-tracker.lmdb"
    by_cli = tmp_path / "by-cli.lmdb"
    cli_json(capsys, "migrate", "--database", str(by_cli), str(project))

    def migrated(database: Path) -> dict[str, list[dict[str, Any]]]:
        return {table: [r for r in records if "migratedFrom" in r] for table, records in export(capsys, database).items()}

    assert migrated(by_bridge) == migrated(by_cli)
    expected = Expected(EXPECTED["subdbs.mdb"], source)
    assert_exact(by_content(migrated(by_bridge)["commits"]), by_content(expected.commits))


async def test_the_bridge_moves_an_lmdbjs_central_database_aside_and_imports_it(
        isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    central = isolated_home / ".config" / "opencode" / "agent-tracker.lmdb"
    central.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "flat.mdb", central)
    original = fingerprint(central)
    bridge = await start_bridge(isolated_home)
    try:
        result = await bridge.initialize(isolated_home / "project")
        assert result["database"]["available"] is True and result["database"]["readOnly"] is False
        (source,) = result["migration"]["sources"]
        assert source["movedAsideFrom"] == str(central)
        backup = Path(source["path"])
        assert backup.name.startswith("agent-tracker.lmdb.lmdbjs-backup-")
        assert fingerprint(backup) == original  # moved, not rewritten
        expected = Expected(EXPECTED["flat.mdb"], backup)
        assert source["imported"] == expected.counts()
        for agent in expected.agents:
            status = await bridge.request("agent.status", {"agentId": agent["id"]})
            assert_exact([status[k] for k in ("skillPoints", "experiencePoints", "communicationScore", "halted")],
                         [agent[k] for k in ("skillPoints", "experiencePoints", "communicationScore", "halted")])
        assert any("Imported 444 records" in toast["message"] for toast in bridge.notifications_of("toast"))
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    exported = export(capsys, central)
    for table, records in expected.exported().items():
        assert_exact(by_content(exported.get(table, [])), by_content(records), table)
