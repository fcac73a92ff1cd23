"""The older TypeScript plugin's lmdb-js databases are imported exactly, additively, idempotently."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from support.bridges import start_bridge

from bridge.config import BridgeConfig
from bridge.migration.importer import LEGACY_RELATIVE, migrate_paths, migrate_source
from bridge.store import Store, key

FIXTURES = Path(__file__).parent / "fixtures" / "lmdbjs"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())["fixtures"]
TABLES = ("agents", "commits", "communication", "retrospectives", "activities", "projects")


def iso(ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)  # exact, no float
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def plain(value: Any) -> Any:
    """expected.json's tagged values → what the importer stores."""
    if isinstance(value, dict):
        if value.get("$") == "date":
            return iso(value["v"])
        return {k: plain(v) for k, v in value.items() if v != {"$": "undefined"}}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def entries(fixture: str, database: str | None) -> list[dict[str, Any]]:
    for db in EXPECTED[fixture]["databases"]:
        if db["name"] == database:
            return [e for e in db["entries"] if not (isinstance(e["key"], dict) and e["key"].get("$") == "symbol")]
    return []


def flat_entries(fixture: str, prefix: str) -> list[dict[str, Any]]:
    return [e for e in entries(fixture, None) if str(e["key"]).startswith(prefix)]


@pytest.fixture
def store(tmp_path: Path):
    with Store.open(BridgeConfig(database_path=str(tmp_path / "central.lmdb"))) as opened:
        yield opened


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def dump(store: Store) -> dict[str, list[tuple[str, Any]]]:
    with store.read() as view:
        return {table: list(view.scan(table)) for table in TABLES}


@pytest.mark.parametrize("fixture", ["subdbs.mdb", "subdbs-uncompressed.mdb"])
def test_subdatabase_layout_round_trips_exactly(store: Store, tmp_path: Path, fixture: str) -> None:
    source = tmp_path / "agent-tracker.lmdb"
    shutil.copy(FIXTURES / fixture, source)
    result = migrate_source(store, source)
    assert result.errors == []
    agents, commits = entries(fixture, "agents"), entries(fixture, "commits")
    grades = entries(fixture, "communication")
    unique_grades = {json.dumps([g["value"][f] if f in g["value"] else None
                                 for f in ("agentId", "projectPath", "commitHash", "grade", "grader", "reason")])
                     for g in grades}
    assert result.imported == {
        "agents": len(agents), "commits": len(commits), "communication": len(unique_grades),
        "retrospectives": len(entries(fixture, "retrospectives")),
        "activities": len(entries(fixture, "activities")), "projects": len(entries(fixture, "projects"))}
    with store.read() as view:
        for entry in agents:
            old = plain(entry["value"])
            new = view.get("agents", old["id"])
            assert {k: new[k] for k in ("skillPoints", "experiencePoints", "communicationScore", "totalCommits",
                                        "totalBugs", "createdAt", "updatedAt")} == \
                   {k: old[k] for k in ("skillPoints", "experiencePoints", "communicationScore", "totalCommits",
                                        "totalBugs", "createdAt", "updatedAt")}
            assert new["halted"] == old.get("halted", old["skillPoints"] <= 0)
        for entry in commits:
            old = plain(entry["value"])
            new = view.get("commits", key(old["projectPath"], old["hash"]))
            assert new["agentId"] == old["agentId"] and new["createdAt"] == old["timestamp"]
            assert new.get("taskDescription") == old.get("taskDescription")
            assert new.get("pushed") == old.get("pushed")
        stored = [record for _, record in view.scan("communication")]
        assert sorted(json.dumps([r["agentId"], r["projectPath"], r["commitHash"], r["grade"], r["grader"],
                                  r.get("reason")]) for r in stored) == sorted(unique_grades)


def test_flat_layout_round_trips_floats_dates_and_unicode(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "agent-tracker.lmdb"
    shutil.copy(FIXTURES / "flat.mdb", source)
    result = migrate_source(store, source)
    assert result.layout == "flat" and result.errors == []
    agents = flat_entries("flat.mdb", "agent:")
    assert result.imported["agents"] == len(agents)
    assert result.imported["commits"] == len(flat_entries("flat.mdb", "commit:"))
    scores = set()
    with store.read() as view:
        for entry in agents:
            old = plain(entry["value"])
            new = view.get("agents", old["id"])
            assert new["communicationScore"] == old["communicationScore"]
            assert new["createdAt"] == old["createdAt"]
            scores.add(new["communicationScore"])
        # project paths with ':' come from the values, not the key
        projects = {record["projectPath"] for _, record in view.scan("commits")}
    assert {23.7, 0.30000000000000004} <= scores
    assert "C:\\Users\\dev\\repo:with:colons" in projects and any("代码" in p for p in projects)


def test_second_migration_adds_nothing_and_sources_stay_byte_identical(store: Store, tmp_path: Path) -> None:
    project = tmp_path / "project"
    source = project / LEGACY_RELATIVE
    source.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "subdbs.mdb", source)
    lock = source.with_name(source.name + "-lock")
    lock.write_bytes(b"lmdb-js lock file stand-in")
    before = fingerprint(source), fingerprint(lock)
    first = migrate_paths(store, [project])
    snapshot = dump(store)
    second = migrate_paths(store, [project])
    assert first.imported > 0 and second.imported == 0 and second.sources[0].up_to_date
    # The same content from another copy of the file (new path, new fingerprint): nothing new either.
    copy = tmp_path / "copy.lmdb"
    shutil.copy(FIXTURES / "subdbs.mdb", copy)
    third = migrate_paths(store, [copy])
    assert third.imported == 0 and third.sources[0].already_present > 0
    assert dump(store) == snapshot
    assert (fingerprint(source), fingerprint(lock)) == before


def test_dry_run_counts_without_writing(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "old.lmdb"
    shutil.copy(FIXTURES / "subdbs.mdb", source)
    report = migrate_paths(store, [source], dry_run=True)
    assert report.imported == sum(report.sources[0].imported.values()) > 0
    assert all(not records for records in dump(store).values())
    with store.read() as view:
        assert view.count("migrations") == 0


def test_undecodable_and_unknown_entries_are_reported_not_fatal(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "misc.lmdb"
    shutil.copy(FIXTURES / "misc.mdb", source)
    result = migrate_source(store, source)
    assert result.errors, "unknown keys must be listed"
    assert all(isinstance(error, str) and error for error in result.errors)
    with store.read() as view:
        assert view.count("migrations") == 1  # the rest of the source was still processed


def test_corrupt_source_is_an_error_not_a_crash(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "broken.lmdb"
    source.write_bytes(b"\x00" * 8192)
    result = migrate_source(store, source)
    assert result.errors and result.errors[0].startswith("cannot read:")
    assert sum(result.imported.values()) == 0


async def test_bridge_moves_an_lmdbjs_central_database_aside_and_imports_it(isolated_home: Path) -> None:
    central = isolated_home / ".config" / "opencode" / "agent-tracker.lmdb"
    central.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "flat.mdb", central)
    original = fingerprint(central)
    bridge = await start_bridge(isolated_home)
    try:
        result = await bridge.initialize(isolated_home / "project")
        assert result["database"]["available"] is True and result["database"]["readOnly"] is False
        migrated = result["migration"]
        (source,) = migrated["sources"]
        assert source["movedAsideFrom"] == str(central)
        backup = Path(source["path"])
        assert backup.name.startswith("agent-tracker.lmdb.lmdbjs-backup-")
        assert fingerprint(backup)[0] == original[0]  # moved, not rewritten
        old_agent = plain(flat_entries("flat.mdb", "agent:agent-1")[0]["value"])
        status = await bridge.request("agent.status", {"agentId": "agent-1"})
        assert (status["skillPoints"], status["experiencePoints"], status["communicationScore"]) == (
            old_agent["skillPoints"], old_agent["experiencePoints"], old_agent["communicationScore"])
        toasts = bridge.notifications_of("toast")
        assert any("Imported" in toast["message"] for toast in toasts)
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()


async def test_project_database_is_imported_on_initialize(isolated_home: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    source = project / LEGACY_RELATIVE
    source.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "subdbs.mdb", source)
    bridge = await start_bridge(isolated_home)
    try:
        result = await bridge.initialize(project)
        assert result["migration"]["imported"] > 0
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    again = await start_bridge(isolated_home)
    try:
        assert (await again.initialize(project))["migration"] is None  # already imported: silent
        assert await again.shutdown_and_exit() == 0
    finally:
        again.kill()


def test_cli_migrate_shows_a_summary_and_dry_run_writes_nothing(isolated_home: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    from support.bridges import bridge_env

    project = tmp_path / "project"
    source = project / LEGACY_RELATIVE
    source.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "subdbs.mdb", source)
    database = tmp_path / "central.lmdb"

    def migrate(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bridge", "migrate", "--database", str(database), *flags,
                               str(project)], capture_output=True, text=True, env=bridge_env(isolated_home),
                              timeout=60)

    dry = migrate("--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    (planned,) = json.loads(dry.stdout)["results"]
    assert planned["dryRun"] is True and planned["imported"] == 347
    with Store.open(BridgeConfig(database_path=str(database))) as store:
        assert all(not rows for rows in dump(store).values())
    real = migrate()
    assert real.returncode == 0, real.stderr
    assert "Imported 347 records from 1 old database(s)." in real.stdout
    assert "subdatabases" in real.stdout and "already there" in real.stdout
    again = migrate("--json")
    (second,) = json.loads(again.stdout)["results"]
    assert second["imported"] == 0 and second["sources"][0]["upToDate"] is True
