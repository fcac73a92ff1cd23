"""Issue 26, items 1 and 10: the wheel, installed into a fresh virtual environment, runs `demo`,
`install-plugin`, `usage daily` and `recommend`, with nothing of the checkout on its path.

Fast on purpose (a few seconds): the wheel is built without build isolation from a copy of the
files it needs, and installed `--no-deps` with this interpreter's pip into a venv without pip; a
.pth line gives it this test venv's dependencies (their folder only: its .pth files, such as the
editable install of the checkout, are not processed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from support.bridges import ROOT

SOURCES = ("pyproject.toml", "README.md", "LICENSE", "bridge", "examples/sessions", "examples/opencode-plugin/plugin")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        source, target = ROOT / name, tree / name
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "node_modules", "*.egg-info"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-q", "-w", str(out), str(tree)], capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    (found,) = out.glob("*.whl")
    return found


def test_the_wheel_is_named_as_the_command_and_ships_the_example_sessions(wheel: Path) -> None:
    assert wheel.name.startswith("agent_tracker-")  # the distribution is the command's name
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(Path(n).name for n in names if n.startswith("bridge/data/sessions/"))
    assert shipped == sorted(p.name for p in (ROOT / "examples" / "sessions").glob("*.jsonl"))
    assert "bridge/data/opencode-plugin/agent-tracker/tracker.js" in names


def test_the_example_sessions_have_one_source_of_truth() -> None:
    """bridge/data/sessions is examples/sessions (a symlink), never a second copy that drifts."""
    shipped = ROOT / "bridge" / "data" / "sessions"
    assert shipped.is_symlink() and shipped.resolve() == (ROOT / "examples" / "sessions").resolve()


def test_a_fresh_venv_runs_demo_install_plugin_usage_and_recommend(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--no-index", "-q", str(wheel)], capture_output=True, text=True, timeout=120)
    assert install.returncode == 0, install.stderr
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = {"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local" / "share"),
           "COLUMNS": "100", "LANG": "C.UTF-8"}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(venv / "bin" / "agent-tracker"), *argv], capture_output=True, text=True,
                              env=env, cwd=work, timeout=120)

    where = subprocess.run([str(python), "-c", "import bridge; print(bridge.__file__)"], capture_output=True,
                           text=True, env=env, cwd=work, check=True).stdout.strip()
    assert where.startswith(purelib), where  # the wheel's copy, not the checkout
    demo = run("demo", "--keep", str(tmp_path / "demo"))
    assert demo.returncode == 0, demo.stderr
    assert "Replayed 16 recorded sessions" in demo.stdout and "Agent setups (" in demo.stdout
    database = str(tmp_path / "demo" / "agent-tracker.lmdb")
    plugin = run("install-plugin")
    assert plugin.returncode == 0, plugin.stderr
    assert (home / ".config" / "opencode" / "plugin" / "agent-tracker" / "tracker.js").is_file()
    usage = run("usage", "daily", "--database", database)
    assert usage.returncode == 0, usage.stderr
    assert "Total" in usage.stdout
    advice = run("recommend", str(tmp_path / "demo" / "projects" / "shop-api"), "--database", database)
    assert advice.returncode == 0, advice.stderr
    assert "Use agent build with model anthropic/claude-sonnet-4-5" in " ".join(advice.stdout.split())
