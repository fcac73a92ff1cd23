"""Issue 2: configuration — database path resolution, size parsing, unknown options, precedence.

Paths are checked both as resolved values and by opening a real Store (the file must appear
exactly there, and nowhere else: never a literal ``~`` folder, never the current directory).
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import pytest
from support.bridges import bridge_env, start_bridge
from support.tracking import spawn_bridge

from bridge.config import (
    BridgeConfig,
    ConfigError,
    GiB,
    MiB,
    ScoringRules,
    default_database_path,
    load_config,
    parse_database_size,
    resolve_database_path,
    structure_config,
)
from bridge.protocol.names import wire_name
from bridge.store import Store

RANGE = "between 1 MiB (1048576 bytes) and 2 GiB (2147483648 bytes)"


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from a directory that is not the home directory (like OpenCode in a project)."""
    cwd = tmp_path / "some-project"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def _open_and_close(config: BridgeConfig) -> Path:
    store = Store.open(config)
    try:
        assert store.available, store.error
        return store.path
    finally:
        store.close()


# -- the default path ---------------------------------------------------------------------


def test_default_path_without_xdg_is_home_dot_config(isolated_home: Path, elsewhere: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    expected = isolated_home / ".config" / "opencode" / "agent-tracker.lmdb"
    assert default_database_path() == expected
    assert resolve_database_path(None) == expected
    assert _open_and_close(BridgeConfig()) == expected
    assert expected.is_file()
    # Path.home(), never a literal "~" folder anywhere.
    assert "~" not in str(expected)
    assert not (elsewhere / "~").exists() and not (isolated_home / "~").exists()
    assert os.listdir(elsewhere) == []


def test_default_path_follows_xdg_config_home(isolated_home: Path, tmp_path: Path, elsewhere: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    expected = xdg / "opencode" / "agent-tracker.lmdb"
    assert default_database_path() == expected
    assert _open_and_close(BridgeConfig()) == expected
    assert expected.is_file()
    assert not (isolated_home / ".config").exists()
    assert os.listdir(elsewhere) == []


@pytest.mark.parametrize("value", ["", "relative/xdg"])
def test_empty_or_relative_xdg_config_home_is_ignored(isolated_home: Path, elsewhere: Path, value: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # XDG base-dir spec: a relative (or empty) value is invalid and must be ignored.
    monkeypatch.setenv("XDG_CONFIG_HOME", value)
    assert default_database_path() == isolated_home / ".config" / "opencode" / "agent-tracker.lmdb"
    assert not (elsewhere / "relative").exists()


# -- ~, relative, absolute, :memory: ------------------------------------------------------------


def test_tilde_path_expands_to_home(isolated_home: Path, elsewhere: Path) -> None:
    expected = isolated_home / "trackers" / "mine.lmdb"
    assert resolve_database_path("~/trackers/mine.lmdb") == expected
    assert _open_and_close(BridgeConfig(database_path="~/trackers/mine.lmdb")) == expected
    assert expected.is_file()
    assert os.listdir(elsewhere) == []
    assert not (isolated_home / "~").exists()


def test_relative_path_resolves_against_home_never_the_cwd(isolated_home: Path, elsewhere: Path) -> None:
    expected = isolated_home / "data" / "tracker.lmdb"
    assert resolve_database_path("data/tracker.lmdb") == expected
    assert _open_and_close(BridgeConfig(database_path="data/tracker.lmdb")) == expected
    assert expected.is_file()
    assert not (elsewhere / "data").exists()
    assert os.listdir(elsewhere) == []


def test_absolute_path_is_kept(tmp_path: Path, elsewhere: Path) -> None:
    target = tmp_path / "abs" / "x.lmdb"
    assert resolve_database_path(str(target)) == target
    assert _open_and_close(BridgeConfig(database_path=str(target))) == target
    assert target.is_file()


def test_memory_database_is_a_private_temp_dir_removed_on_close(isolated_home: Path, elsewhere: Path) -> None:
    assert resolve_database_path(":memory:") is None
    first = Store.open(BridgeConfig(database_path=":memory:"))
    second = Store.open(BridgeConfig(database_path=":memory:"))
    try:
        assert first.available and second.available
        assert first.path.parent != second.path.parent
        assert first.path.parent.name.startswith("agent-tracker-memory-")
        first.write(lambda view: view.put("meta", "probe", 1))
        with second.read() as view:
            assert view.get("meta", "probe") is None  # private: nothing shared
        with first.read() as view:
            assert view.get("meta", "probe") == 1
    finally:
        first.close()
        second.close()
    assert not first.path.parent.exists()
    assert not second.path.parent.exists()
    assert os.listdir(elsewhere) == []
    assert not (isolated_home / ".config").exists()


# -- sizes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "message"), [
    (0, f"maxDatabaseSize must be {RANGE}; got 0."),
    (512, f"maxDatabaseSize must be {RANGE}; got 512."),
    (3 * GiB, f"maxDatabaseSize must be {RANGE}; got 3221225472."),
    ("3GiB", f"maxDatabaseSize must be {RANGE}; got '3GiB'."),
    (MiB - 1, f"maxDatabaseSize must be {RANGE}; got 1048575."),
    (2 * GiB + 1, f"maxDatabaseSize must be {RANGE}; got 2147483649."),
    (-1048576, f"maxDatabaseSize must be {RANGE}; got -1048576."),
    ("big", f'maxDatabaseSize must be a number of bytes or a size like "256MiB" or "1GB" {RANGE}; got \'big\'.'),
    ("-5MiB", f'maxDatabaseSize must be a number of bytes or a size like "256MiB" or "1GB" {RANGE}; got \'-5MiB\'.'),
    (True, f"maxDatabaseSize must be a size in bytes {RANGE}; got True."),
    (None, f"maxDatabaseSize must be a size in bytes {RANGE}; got None."),
    (2.5, f"maxDatabaseSize must be a whole number of bytes {RANGE}; got 2.5."),
    (float("nan"), f"maxDatabaseSize must be a whole number of bytes {RANGE}; got nan."),
])
def test_rejected_sizes_name_the_option_value_and_range(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as direct:
        parse_database_size(value)
    assert str(direct.value) == message
    # The same sentence when it comes through the plugin's config object.
    with pytest.raises(ConfigError) as structured:
        structure_config({"maxDatabaseSize": value})
    assert str(structured.value) == message


@pytest.mark.parametrize(("value", "size"), [
    ("256MiB", 256 * MiB),
    ("256 MiB", 256 * MiB),
    ("1GB", 1_000_000_000),
    ("1.5MiB", 1_572_864),
    (MiB, 1_048_576),           # lower bound, inclusive
    (2 * GiB, 2_147_483_648),   # upper bound, inclusive
    ("2GiB", 2_147_483_648),
    ("1048576", 1_048_576),
    (1048576.0, 1_048_576),
])
def test_accepted_sizes(value: object, size: int) -> None:
    assert parse_database_size(value) == size
    assert structure_config({"maxDatabaseSize": value}).max_database_size == size


def test_default_size_is_512_mib() -> None:
    assert BridgeConfig().max_database_size == 512 * MiB
    assert structure_config({}).max_database_size == 512 * MiB
    assert structure_config(None) == BridgeConfig()


# -- other options ------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "message"), [
    ({"colour": "red"}, "Unknown configuration option: colour."),
    ({"databasePath": "~/x.lmdb", "zeta": 1, "alpha": 2}, "Unknown configuration options: alpha, zeta."),
    ({"database_path": "~/x.lmdb"}, "Unknown configuration option: database_path."),
    ({"scoring": {"toolCallXP": 3}}, "Unknown scoring rule: toolCallXP."),
    ({"scoring": 3}, "scoring must be an object of rule overrides; got 3."),
    ({"scoring": {"toolCallXp": -1}}, "scoring.toolCallXp must be a number from 0 to 1000000; got -1."),
    ({"scoring": {"levelCost": 0}}, "scoring.levelCost must be a number from 1 to 1000000000; got 0."),
    # Every option has a ceiling: pushXp 1e30 once made one push spin the level-up loop for ever.
    ({"scoring": {"pushXp": 1e30}}, "scoring.pushXp must be a number from 0 to 1000000; got 1e+30."),
    ({"scoring": {"commitXp": float("inf")}}, "scoring.commitXp must be a number from 0 to 1000000; got inf."),
    ({"scoring": {"levelCost": 1e9 + 1}}, "scoring.levelCost must be a number from 1 to 1000000000; "
                                          "got 1000000001.0."),
    ({"scoring": {"initialSkillPoints": 1001}}, "scoring.initialSkillPoints must be a number from 0 to 1000; "
                                                "got 1001."),
    ({"scoring": {"initialExperiencePoints": 2 ** 70}}, "scoring.initialExperiencePoints must be a number "
                                                        "from 0 to 1000000000; got 1180591620717411303424."),
    ({"scoring": {"communicationCapPerSkillPoint": 1e7}}, "scoring.communicationCapPerSkillPoint must be a "
                                                          "number from 0 to 1000000; got 10000000.0."),
    ({"databasePath": ""}, 'databasePath must be a non-empty path string (absolute, ~/..., relative to '
                           'the home directory, or ":memory:"); got \'\'.'),
    ({"databasePath": 5}, 'databasePath must be a non-empty path string (absolute, ~/..., relative to '
                          'the home directory, or ":memory:"); got 5.'),
    ({"flushIntervalSeconds": -1}, "flushIntervalSeconds must be a number of seconds between 0 (off) "
                                   "and 86400; got -1."),
    ({"journalSyncMilliseconds": -1}, "journalSyncMilliseconds must be a number of milliseconds between 0 "
                                      "(never sync) and 60000; got -1."),
    ({"journalSyncMilliseconds": "50ms"}, "journalSyncMilliseconds must be a number of milliseconds between 0 "
                                          "(never sync) and 60000; got '50ms'."),
    ({"journalSyncMilliseconds": True}, "journalSyncMilliseconds must be a number of milliseconds between 0 "
                                        "(never sync) and 60000; got True."),
    ({"journalSyncMilliseconds": 60001}, "journalSyncMilliseconds must be a number of milliseconds between 0 "
                                         "(never sync) and 60000; got 60001."),
])
def test_invalid_options_give_one_clear_sentence(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        structure_config(raw)
    assert str(caught.value) == message


def test_every_scoring_option_is_bounded_and_its_limits_are_accepted() -> None:
    limits = {"toolCallXp": (0, 1e6), "commandXp": (0, 1e6), "commitXp": (0, 1e6), "pushXp": (0, 1e6),
              "levelCost": (1, 1e9), "initialSkillPoints": (0, 1000), "initialExperiencePoints": (0, 1e9),
              "initialCommunicationScore": (0, 1e6), "communicationCapPerSkillPoint": (0, 1e6)}
    fields = {wire_name(f.name): f.name for f in attrs.fields(ScoringRules)}
    assert set(limits) == set(fields)
    for option, (low, high) in limits.items():
        for value in (low, high):
            rules = structure_config({"scoring": {option: value}}).scoring
            assert getattr(rules, fields[option]) == value
        for value in (low - 0.5, high * 1.0000001):
            with pytest.raises(ConfigError, match=rf"^scoring\.{option} must be a number from {low:g} to {high:.0f}"):
                structure_config({"scoring": {option: value}})


def test_scoring_overrides_are_structured() -> None:
    config = structure_config({"scoring": {"toolCallXp": 2, "levelCost": 500}, "flushIntervalSeconds": 0})
    assert config.scoring == ScoringRules(tool_call_xp=2.0, level_cost=500.0)
    assert config.flush_interval_seconds is None


# -- precedence: defaults < initialize config < environment < CLI flags -------------------------------


def test_precedence_with_explicit_sources(tmp_path: Path) -> None:
    init = {"databasePath": str(tmp_path / "init.lmdb"), "maxDatabaseSize": "8MiB"}
    env = {"AGENT_TRACKER_DATABASE_PATH": str(tmp_path / "env.lmdb"),
           "AGENT_TRACKER_MAX_DATABASE_SIZE": "16MiB"}
    cli = {"databasePath": str(tmp_path / "cli.lmdb"), "maxDatabaseSize": "32MiB"}

    assert load_config(None, None, {}) == BridgeConfig()
    only_init = load_config(init, None, {})
    assert (only_init.database_path, only_init.max_database_size) == (str(tmp_path / "init.lmdb"), 8 * MiB)
    with_env = load_config(init, None, env)
    assert (with_env.database_path, with_env.max_database_size) == (str(tmp_path / "env.lmdb"), 16 * MiB)
    with_cli = load_config(init, cli, env)
    assert (with_cli.database_path, with_cli.max_database_size) == (str(tmp_path / "cli.lmdb"), 32 * MiB)
    # Each source may set one option only; the rest falls through to the next lower source.
    mixed = load_config(init, {"databasePath": None, "maxDatabaseSize": "32MiB"},
                        {"AGENT_TRACKER_DATABASE_PATH": str(tmp_path / "env.lmdb")})
    assert (mixed.database_path, mixed.max_database_size) == (str(tmp_path / "env.lmdb"), 32 * MiB)
    # An empty environment variable does not override.
    empty = load_config(init, None, {"AGENT_TRACKER_DATABASE_PATH": "", "AGENT_TRACKER_MAX_DATABASE_SIZE": ""})
    assert (empty.database_path, empty.max_database_size) == (str(tmp_path / "init.lmdb"), 8 * MiB)


def test_precedence_reads_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_TRACKER_DATABASE_PATH", str(tmp_path / "env.lmdb"))
    monkeypatch.setenv("AGENT_TRACKER_MAX_DATABASE_SIZE", "3MiB")
    config = load_config({"databasePath": str(tmp_path / "init.lmdb"), "maxDatabaseSize": "8MiB"})
    assert (config.database_path, config.max_database_size) == (str(tmp_path / "env.lmdb"), 3 * MiB)


def test_invalid_environment_size_is_rejected_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({}, None, {"AGENT_TRACKER_MAX_DATABASE_SIZE": "lots"})
    assert str(caught.value) == (f'AGENT_TRACKER_MAX_DATABASE_SIZE must be a number of bytes or a size like '
                                 f'"256MiB" or "1GB" {RANGE}; got \'lots\'.')


async def test_precedence_in_the_real_bridge(isolated_home: Path, tmp_path: Path) -> None:
    """initialize config < AGENT_TRACKER_* environment < --database/--max-database-size flags."""
    init_db, env_db, cli_db = tmp_path / "init.lmdb", tmp_path / "env.lmdb", tmp_path / "cli.lmdb"
    env = bridge_env(isolated_home, AGENT_TRACKER_DATABASE_PATH=str(env_db),
                   AGENT_TRACKER_MAX_DATABASE_SIZE="4MiB")
    cases = [
        ((), bridge_env(isolated_home), {"path": str(init_db), "mapSize": 2 * MiB}),
        ((), env, {"path": str(env_db), "mapSize": 4 * MiB}),
        (("--database", str(cli_db), "--max-database-size", "8MiB"), env, {"path": str(cli_db), "mapSize": 8 * MiB}),
        (("--max-database-size", "8MiB"), env, {"path": str(env_db), "mapSize": 8 * MiB}),
    ]
    for args, environment, expected in cases:
        bridge, result = await spawn_bridge(isolated_home, init_db, *args, env=environment,
                                            maxDatabaseSize="2MiB")
        try:
            assert result["database"] == {**expected, "available": True, "readOnly": False}
            assert await bridge.shutdown_and_exit() == 0
        finally:
            bridge.kill()
        assert Path(expected["path"]).is_file()


async def test_the_bridge_rejects_unknown_options_in_initialize(isolated_home: Path, tmp_path: Path) -> None:
    from support.bridges import RpcError
    bridge = await start_bridge(isolated_home)
    try:
        with pytest.raises(RpcError) as caught:
            await bridge.initialize(None, databasePath=str(tmp_path / "t.lmdb"), colour="red")
        assert (caught.value.code, caught.value.message) == (-32602, "Unknown configuration option: colour.")
        assert not (tmp_path / "t.lmdb").exists()
    finally:
        bridge.kill()
        await bridge.wait()


def test_journal_sync_defaults_to_50_ms_and_0_turns_it_off() -> None:
    assert structure_config(None).journal_sync_milliseconds == 50.0
    assert structure_config({"journalSyncMilliseconds": 0}).journal_sync_milliseconds == 0.0
    assert structure_config({"journalSyncMilliseconds": 2.5}).journal_sync_milliseconds == 2.5
