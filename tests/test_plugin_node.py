"""Runs the OpenCode plugin's Node tests (examples/opencode-plugin/test/) from pytest.

They load the plugin with a realistic PluginInput, feed it OpenCode's real payloads (recorded
from OpenCode 1.18.33) and check what the real bridge stored. `npm ci` runs first when the
plugin's node_modules is missing; HOME is a temp dir (set by conftest) for npm and the tests.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PLUGIN_PKG = REPO / "examples" / "opencode-plugin"


def _node_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_TRACKER_", "OPENCODE"))}
    env.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "AGENT_TRACKER_TEST_PYTHON": sys.executable,
        "PYTHONPATH": str(REPO),
    })
    return env


@pytest.fixture(scope="module")
def node_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js (node and npm) is not installed")
    env = _node_env(tmp_path_factory.mktemp("node-home"))
    if not (PLUGIN_PKG / "node_modules" / "vscode-jsonrpc").is_dir():
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PLUGIN_PKG, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"npm ci failed in {PLUGIN_PKG}:\n{proc.stdout}\n{proc.stderr}"
    return env


def test_plugin_node_tests(node_env: dict[str, str]) -> None:
    proc = subprocess.run(["node", "--test", "--test-concurrency=1", "test/"], cwd=PLUGIN_PKG, env=node_env,
                          capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"node --test failed:\n{output[-20000:]}"
    # node --test ends with a summary: tests ran, and every one of them passed.
    summary = {name: int(count) for name, count in re.findall(r"^# (tests|pass|fail) (\d+)$", output, re.M)}
    assert summary.get("tests", 0) > 0, output[-5000:]
    assert summary == {"tests": summary["tests"], "pass": summary["tests"], "fail": 0}, output[-5000:]


def test_plugin_typechecks(node_env: dict[str, str]) -> None:
    """`npm run check`: tsc --checkJs over the plugin, its tests and the benchmark."""
    proc = subprocess.run(["npm", "run", "--silent", "check"], cwd=PLUGIN_PKG, env=node_env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"tsc --checkJs failed:\n{proc.stdout}\n{proc.stderr}"
