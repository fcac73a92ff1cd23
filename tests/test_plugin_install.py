"""`install-plugin` / `uninstall-plugin`: where the plugin goes, how user config is merged, idempotence.

Also the sync check: the plugin's canonical source is examples/opencode-plugin/plugin/agent-tracker/
(where its Node tests and type check run); bridge/data/opencode-plugin/ is the copy shipped in the
Python package, which install-plugin installs. `npm run sync` (in examples/opencode-plugin)
refreshes the copy; this test fails when they differ.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bridge import plugin_install as pi
from bridge.plugin_install import InstallError, install_plugin, parse_jsonc, uninstall_plugin

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "examples" / "opencode-plugin"
SHIPPED = REPO / "bridge" / "data" / "opencode-plugin"
COMMAND = [sys.executable, "-m", "bridge", "serve"]


def test_shipped_plugin_is_identical_to_the_canonical_source() -> None:
    source = {p.name: p.read_bytes() for p in (SOURCE / "plugin" / "agent-tracker").glob("*.js")}
    shipped = {p.name: p.read_bytes() for p in (SHIPPED / "agent-tracker").glob("*.js")}
    assert source, "no plugin source"
    assert sorted(shipped) == sorted(source), "run `npm run sync` in examples/opencode-plugin"
    for name in source:
        assert shipped[name] == source[name], f"{name} differs: run `npm run sync` in examples/opencode-plugin"
    deps = json.loads((SOURCE / "package.json").read_text())["dependencies"]
    assert json.loads((SHIPPED / "package.json").read_text())["dependencies"] == deps
    # the package data the installer reads is the same copy
    assert {e.name for e in (pi.plugin_source() / "agent-tracker").iterdir()} >= set(source)


def test_global_install_layout_and_idempotence(isolated_home: Path) -> None:
    config = isolated_home / ".config" / "opencode"
    result = install_plugin(None, bridge_command=COMMAND)
    assert result.config_dir == config
    folder = config / "plugin" / "agent-tracker"
    for name in ("index.js", "tracker.js", "bridge.js", "util.js", "install.json"):
        assert folder / name in result.changed
    assert (folder / "index.js").read_bytes() == (SOURCE / "plugin" / "agent-tracker" / "index.js").read_bytes()
    opencode = json.loads((config / "opencode.json").read_text())
    assert opencode["plugin"] == [["./plugin/agent-tracker/index.js", {"bridgeCommand": COMMAND}]]
    package = json.loads((config / "package.json").read_text())
    assert package["dependencies"]["vscode-jsonrpc"].startswith("^")
    assert "Installed" in result.message and "all projects" in result.message
    # OpenCode only auto-loads top-level plugin/*.js files: ours must not be one
    assert not list((config / "plugin").glob("*.js"))

    again = install_plugin(None, bridge_command=COMMAND)
    assert again.changed == []
    assert "already installed" in again.message
    # a new bridge command replaces our entry, it does not add a second one
    changed = install_plugin(None, bridge_command=["agent-tracker-dev", "serve"])
    assert changed.changed == [folder / "install.json", config / "opencode.json"]
    assert json.loads((config / "opencode.json").read_text())["plugin"] == [
        ["./plugin/agent-tracker/index.js", {"bridgeCommand": ["agent-tracker-dev", "serve"]}]]


def test_default_bridge_command(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pi.shutil, "which", lambda name: None)
    install_plugin(None)
    entry = parse_jsonc((isolated_home / ".config" / "opencode" / "opencode.json").read_text())["plugin"][0]
    assert entry[1]["bridgeCommand"] == [sys.executable, "-m", "bridge", "serve"]
    monkeypatch.setattr(pi.shutil, "which", lambda name: "/usr/bin/agent-tracker")
    install_plugin(None)
    entry = parse_jsonc((isolated_home / ".config" / "opencode" / "opencode.json").read_text())["plugin"][0]
    assert entry == "./plugin/agent-tracker/index.js", "agent-tracker on PATH: the plugin's default"


JSONC = """// my OpenCode config
{
  "$schema": "https://opencode.ai/config.json",
  /* plugins I use */
  "plugin": [
    "opencode-foo@1.2.3", // pinned
    ["./plugin/other.js", {"x": [1, 2]}],
  ],
  "model": "anthropic/claude",   // trailing comma next
}
"""


def test_merges_into_a_users_jsonc_and_uninstall_restores_it(tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    config.mkdir()
    (config / "opencode.jsonc").write_text(JSONC)
    (config / "package.json").write_text(json.dumps({"dependencies": {"left-pad": "1.0.0"}}, indent=4))
    result = install_plugin(None, bridge_command=COMMAND, config_dir=config)
    text = (config / "opencode.jsonc").read_text()
    assert not (config / "opencode.json").exists(), "the existing .jsonc is the one edited"
    for kept in ("// my OpenCode config", "/* plugins I use */", "// pinned", "// trailing comma next"):
        assert kept in text
    data = parse_jsonc(text)
    assert data["plugin"][:2] == ["opencode-foo@1.2.3", ["./plugin/other.js", {"x": [1, 2]}]]
    assert data["plugin"][2] == ["./plugin/agent-tracker/index.js", {"bridgeCommand": COMMAND}]
    assert data["model"] == "anthropic/claude"
    assert (config / "opencode.jsonc.agent-tracker.bak").read_text() == JSONC
    assert config / "opencode.jsonc.agent-tracker.bak" in result.backups
    package = json.loads((config / "package.json").read_text())
    assert package["dependencies"]["left-pad"] == "1.0.0"
    assert "vscode-jsonrpc" in package["dependencies"]
    assert (config / "package.json").read_text().startswith('{\n    "dependencies"'), "indentation kept"

    removed = uninstall_plugin(None, config_dir=config)
    assert (config / "opencode.jsonc").read_text() == JSONC
    assert json.loads((config / "package.json").read_text()) == {"dependencies": {"left-pad": "1.0.0"}}
    assert not (config / "plugin").exists()
    assert "Removed" in removed.message
    assert uninstall_plugin(None, config_dir=config).changed == []


def test_a_dependency_the_user_had_is_kept_on_uninstall(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"dependencies": {"vscode-jsonrpc": "8.2.1"}}))
    install_plugin(None, bridge_command=COMMAND, config_dir=tmp_path)
    assert json.loads((tmp_path / "package.json").read_text())["dependencies"] == {"vscode-jsonrpc": "8.2.1"}
    uninstall_plugin(None, config_dir=tmp_path)
    assert json.loads((tmp_path / "package.json").read_text())["dependencies"] == {"vscode-jsonrpc": "8.2.1"}


@pytest.mark.parametrize("text", ['{"plugin": "not-a-list"}', '{"plugin": [', "[1, 2]", '{"a": 1 /* open'])
def test_broken_user_config_is_not_touched(tmp_path: Path, text: str) -> None:
    (tmp_path / "opencode.json").write_text(text)
    with pytest.raises(InstallError, match="opencode.json"):
        install_plugin(None, bridge_command=COMMAND, config_dir=tmp_path)
    assert (tmp_path / "opencode.json").read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["opencode.json"], "nothing else written"


def test_broken_package_json_is_not_touched(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text("{oops")
    with pytest.raises(InstallError, match="package.json"):
        install_plugin(None, bridge_command=COMMAND, config_dir=tmp_path)
    assert (tmp_path / "package.json").read_text() == "{oops"
    assert not (tmp_path / "opencode.json").exists()


def test_project_install_and_dry_run(tmp_path: Path, isolated_home: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    dry = install_plugin(project, bridge_command=COMMAND, dry_run=True)
    assert dry.dry_run and dry.changed and "Would install" in dry.message
    assert not (project / ".opencode").exists(), "a dry run writes nothing"
    result = install_plugin(project, bridge_command=COMMAND)
    assert result.config_dir == project.resolve() / ".opencode"
    assert set(dry.changed) == set(result.changed)
    assert (project / ".opencode" / "plugin" / "agent-tracker" / "index.js").exists()
    assert parse_jsonc((project / ".opencode" / "opencode.json").read_text())["plugin"][0][0] == "./plugin/agent-tracker/index.js"
    assert not (isolated_home / ".config" / "opencode").exists(), "the global config is untouched"
    with pytest.raises(InstallError, match="does not exist"):
        install_plugin(tmp_path / "missing")


def test_stale_files_of_an_older_version_are_removed(tmp_path: Path) -> None:
    install_plugin(None, bridge_command=COMMAND, config_dir=tmp_path)
    stale = tmp_path / "plugin" / "agent-tracker" / "old-module.js"
    stale.write_text("export {}")
    result = install_plugin(None, bridge_command=COMMAND, config_dir=tmp_path)
    assert result.changed == [stale] and not stale.exists()


@pytest.mark.parametrize("text, expected", [
    ("", {"plugin": ["./plugin/agent-tracker/index.js"]}),
    ("{}", {"plugin": ["./plugin/agent-tracker/index.js"]}),
    ('{"$schema": "x"}', {"plugin": ["./plugin/agent-tracker/index.js"], "$schema": "x"}),
    ('{\n  // only a comment\n}', {"plugin": ["./plugin/agent-tracker/index.js"]}),
    ('{"plugin": []}', {"plugin": ["./plugin/agent-tracker/index.js"]}),
    ('{"plugin": ["a",]}', {"plugin": ["a", "./plugin/agent-tracker/index.js"]}),
])
def test_upsert_shapes(text: str, expected: dict) -> None:
    new = pi.upsert_plugin_entry(text, {})
    assert parse_jsonc(new) == expected
    assert pi.upsert_plugin_entry(new, {}) == new
    removed = pi.remove_plugin_entry(new)
    assert "agent-tracker" not in removed
