"""The commands that write files, run as a user runs them (the console script in a subprocess):

* ``export`` / ``report --chart`` never write the database, its lock file or its journal folder,
  whatever path names them (a symlink, a hard link), while a bridge runs on that database, and a
  failed export leaves the previous file as it was;
* ``install-plugin`` / ``uninstall-plugin`` write a symlinked config through to its target with its
  mode and owner, refuse a read-only one, and never overwrite a backup;
* an error is one sentence on stderr with the documented exit code, never a traceback: a full
  ``/dev/full``, a read-only ``.opencode``, a symlink loop.

Tests run as root: read-only places are made with a read-only bind mount in a private mount
namespace (``unshare -m``), where root gets EROFS too; "read-only file" means mode 0444.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from reliability import bridge_env, read_db, record, spawn

pytestmark = pytest.mark.reliability

SCRIPT = Path(sys.executable).with_name("agent-tracker")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "bridge"]


def agent_tracker(home: Path, *argv: str, stdout: int | None = subprocess.PIPE,
                  prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, *COMMAND, *argv], stdout=stdout, stderr=subprocess.PIPE, text=True,
                          timeout=120, env=bridge_env(home), cwd=str(home))


def in_read_only_mount(folder: Path) -> tuple[str, ...]:
    """A command prefix that runs the command with ``folder`` bind-mounted read-only (EROFS for root)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    quoted = shlex.quote(str(folder))
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind {quoted} {quoted}"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no mount namespaces here: {probe.stderr.decode()[:200]}")
    return ("unshare", "-m", "sh", "-c", f'mount --bind {quoted} {quoted} && mount -o remount,bind,ro {quoted} '
                                         f'&& exec "$@"', "sh")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(folder: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry under ``folder``: (mode, size, sha256 or link target)."""
    entries = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        content = os.readlink(path) if path.is_symlink() else (digest(path) if path.is_file() else "")
        entries[str(path.relative_to(folder))] = (info.st_mode, info.st_size, content)
    return entries


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's database (real sessions through the real bridge), made once for the module."""
    folder = tmp_path_factory.mktemp("demo")
    demo = agent_tracker(tmp_path_factory.mktemp("home"), "demo", "--keep", str(folder / "demo"))
    assert demo.returncode == 0, demo.stderr
    return folder / "demo" / "agent-tracker.lmdb"


def one_sentence(result: subprocess.CompletedProcess[str], text: str) -> None:
    """The error is its first sentence on one line; what to do, if the text says more, is one hint
    line (the CLI contract, issue 26)."""
    from bridge.cli.common import error_lines

    error, hint = error_lines(text)
    assert result.stderr == f"agent-tracker: {error}\n" + (f"hint: {hint}\n" if hint else ""), result.stderr
    assert "Traceback" not in result.stderr


# -- export never writes the database ------------------------------------------------------------------

async def test_export_refuses_every_path_to_the_database_while_a_bridge_runs(isolated_home: Path,
                                                                          tmp_path: Path) -> None:
    """`export -o <database>` truncated the live file: SIGBUS in the export and in the bridge at its
    next flush, and the next bridge started an empty database. Every name of the database's files is
    refused (exit 2), nothing changes, and the running bridge then flushes everything."""
    database = tmp_path / "data" / "agent-tracker.lmdb"
    bridge, init, _ = await spawn(isolated_home, tmp_path, databasePath=str(database))
    try:
        bridge.notify("session.created", {"sessionID": "s1", "directory": str(tmp_path), "agent": {"id": "build"}})
        for call in range(10):
            bridge.notify("tool.executed", {"sessionID": "s1", "callID": f"a{call}", "tool": "read", "success": True})
        assert (await bridge.request("flush"))["errors"] == []
        for call in range(5):  # pending in the bridge (and its journal) while the exports run
            bridge.notify("tool.executed", {"sessionID": "s1", "callID": f"b{call}", "tool": "read", "success": True})
        assert (await bridge.request("agent.status", {"agentId": "build"}))["experiencePoints"] == 15.0

        lock = database.with_name("agent-tracker.lmdb-lock")
        journal = database.with_name("agent-tracker.lmdb-journal")
        (tmp_path / "link.json").symlink_to(database)
        os.link(database, tmp_path / "hard-link.json")          # another name, the same inode
        another = tmp_path / "other" / "agent-tracker.lmdb"     # another agent-tracker database
        another.parent.mkdir()
        shutil.copyfile(database, another)
        before = (digest(database), lock.stat().st_ino, listing(journal), digest(another))
        refused = {
            database: f"it is the agent-tracker database {database}; only LMDB may write that file.",
            tmp_path / "link.json": f"it is the agent-tracker database {database}; only LMDB may write that file.",
            tmp_path / "hard-link.json": f"it is the agent-tracker database {database}; only LMDB may write that file.",
            lock: f"it is the lock file of the agent-tracker database {database}.",
            journal / "export.json": f"it is inside the crash journal folder of the agent-tracker database {database}.",
            another: "it is an LMDB database (or its lock file); only LMDB may write it.",
        }
        for target, reason in refused.items():
            for fmt in ("json", "jsonl"):
                result = agent_tracker(isolated_home, "export", "--database", str(database), "--format", fmt,
                                       "-o", str(target))
                assert result.returncode == 2
                one_sentence(result, f"Refusing to write the export to {target}: {reason} Choose another file.")
        # A folder: json goes to <folder>/agent-tracker-export.json, csv to <folder>/<table>.csv.
        for fmt, name in (("json", "agent-tracker-export.json"), ("csv", "agents.csv")):
            result = agent_tracker(isolated_home, "export", "--database", str(database), "--format", fmt,
                                   "-o", str(journal))
            assert result.returncode == 2
            one_sentence(result, f"Refusing to write the export to {journal / name}: it is inside the crash "
                                 f"journal folder of the agent-tracker database {database}. Choose another file.")
        chart = tmp_path / "chart.png"
        chart.symlink_to(database)
        result = agent_tracker(isolated_home, "report", "--database", str(database), "--chart", str(chart))
        assert result.returncode == 2
        one_sentence(result, f"Refusing to write the chart to {chart}: it is the agent-tracker database "
                             f"{database}; only LMDB may write that file. Choose another file.")
        assert (digest(database), lock.stat().st_ino, listing(journal), digest(another)) == before

        # The bridge never noticed: it flushes its 5 pending calls and exits cleanly.
        assert (await bridge.request("flush"))["errors"] == []
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    stored = read_db(database)
    assert (stored["agents"]["build"]["experiencePoints"], stored["sessions"]["s1"]["toolCalls"]) == (15.0, 15)
    # And an export to a real file works, through the same check.
    result = agent_tracker(isolated_home, "export", "--database", str(database), "-o", str(tmp_path / "out.json"))
    assert result.returncode == 0, result.stderr
    assert len(json.loads((tmp_path / "out.json").read_text())["tables"]["sessions"]) == 1
    record("cli_safety", export_paths_refused=len(refused) * 2 + 2 + 1)


def test_a_failed_export_keeps_the_previous_file(isolated_home: Path, tmp_path: Path, demo_database: Path) -> None:
    """An export that fails half-way (a full disk: an 8 KiB tmpfs) leaves the previous export as it
    was and no temporary file; the export used to truncate it first."""
    database = demo_database
    small = tmp_path / "small-disk"
    small.mkdir()
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    quoted = shlex.quote(str(small))
    script = (f"mount -t tmpfs -o size=8k tmpfs {quoted} && printf 'previous export\\n' > {quoted}/export.json "
              f"&& chmod 640 {quoted}/export.json && \"$@\"; echo \"exit=$?\"; ls -A {quoted}; "
              f"stat -c %a {quoted}/export.json; cat {quoted}/export.json")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=8k tmpfs {quoted}"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no mount namespaces here: {probe.stderr.decode()[:200]}")
    result = agent_tracker(isolated_home, "export", "--database", str(database), "-o", str(small / "export.json"),
                           prefix=("unshare", "-m", "sh", "-c", script, "sh"))
    assert result.stdout == "exit=1\nexport.json\n640\nprevious export\n"
    one_sentence(result, f"Cannot write the export to {small / 'export.json'}: No space left on device.")
    record("cli_safety", failed_export_kept_previous=True)


async def test_a_recording_never_goes_into_a_database(isolated_home: Path, tmp_path: Path, demo_database: Path) -> None:
    """AGENT_TRACKER_RECORD naming a database appended JSON lines to the LMDB file; a path that cannot
    be opened ended the bridge with a traceback before initialize. Both: one log line, no recording."""
    copy = tmp_path / "agent-tracker.lmdb"
    shutil.copyfile(demo_database, copy)
    before = digest(copy)
    for target, reason in ((copy, f"Refusing to write the recording to {copy}: it is an LMDB database (or its "
                                  f"lock file); only LMDB may write it. Choose another file."),
                           (tmp_path / "missing" / "r.jsonl", f"No such file or directory: {tmp_path / 'missing' / 'r.jsonl'}.")):
        bridge, init, stderr = await spawn(isolated_home, tmp_path, databasePath=str(tmp_path / "db.lmdb"),
                                           env=bridge_env(isolated_home, AGENT_TRACKER_RECORD=str(target)))
        try:
            assert init["database"]["available"] is True
            assert await bridge.shutdown_and_exit() == 0
        finally:
            bridge.kill()
        assert f"agent-tracker [error] AGENT_TRACKER_RECORD: {reason} The session is not recorded.\n" in await stderr
    assert digest(copy) == before
    record("cli_safety", recording_into_a_database="refused, file unchanged")


# -- one sentence and the documented exit code, never a traceback ------------------------------------------

def test_output_that_cannot_be_written_is_one_sentence(isolated_home: Path, demo_database: Path) -> None:
    database = str(demo_database)
    with open("/dev/full", "w") as full:
        for argv in (["status"], ["status", "--json"], ["status", "build"], ["report"], ["report", "--json"],
                     ["export"], ["export", "--format", "csv"]):
            result = agent_tracker(isolated_home, *argv, "--database", database, stdout=full.fileno())
            assert result.returncode == 1, (argv, result.stderr)
            one_sentence(result, "Cannot write to standard output: No space left on device.")
    result = agent_tracker(isolated_home, "export", "--database", database, "-o", "/dev/full")
    assert result.returncode == 1
    one_sentence(result, "Cannot write the export to /dev/full: No space left on device.")
    assert os.path.exists("/dev/full") and stat.S_ISCHR(os.stat("/dev/full").st_mode), "never replaced by a file"
    record("cli_safety", full_output_cases=8)


def test_a_symlink_loop_is_one_sentence(isolated_home: Path, tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "back")
    (tmp_path / "back").symlink_to(loop)
    database = tmp_path / "db.lmdb"
    for argv in (["migrate", "--database", str(database), str(loop)], ["install-plugin", "--project", str(loop)],
                 ["uninstall-plugin", "--project", str(loop)]):
        result = agent_tracker(isolated_home, *argv)
        assert result.returncode == 1, (argv, result.stderr)
        one_sentence(result, f"Cannot use {loop}: it is a symbolic link loop.")
    result = agent_tracker(isolated_home, "demo", "--keep", str(loop))
    assert result.returncode == 2
    one_sentence(result, f"Cannot use {loop} for --keep: it is a symbolic link loop.")
    assert not database.exists() and not (isolated_home / ".config").exists()
    record("cli_safety", symlink_loop_cases=4)


def test_install_plugin_into_a_read_only_folder_is_one_sentence(isolated_home: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".opencode").mkdir(parents=True)
    (project / ".opencode" / "opencode.json").write_text('{\n  "plugin": ["other"]\n}\n')
    before = listing(project)
    prefix = in_read_only_mount(project / ".opencode")
    result = agent_tracker(isolated_home, "install-plugin", "--project", str(project), prefix=prefix)
    assert result.returncode == 1
    one_sentence(result, f"cannot write {project / '.opencode' / 'package.json'}: Read-only file system; "
                         f"nothing was changed")
    assert listing(project) == before
    record("cli_safety", read_only_opencode="EROFS -> exit 1, one sentence")


# -- install-plugin / uninstall-plugin and the user's files --------------------------------------------------

CONFIG = '{\n  // my keys\n  "plugin": ["opencode-foo@1.2.3"],\n  "provider": {"x": {"options": {"apiKey": "sk-secret"}}}\n}\n'


def test_install_plugin_writes_through_a_symlink_and_keeps_mode_owner_and_backups(isolated_home: Path) -> None:
    """A dotfiles setup: ~/.config/opencode/opencode.json -> ~/dotfiles/opencode.json, 0600 (an API key),
    owned by uid 4242. It became a 0644 regular file owned by root; uninstall overwrote the backup."""
    dotfiles = isolated_home / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "opencode.json"
    target.write_text(CONFIG)
    os.chown(target, 4242, 4243)
    os.chmod(target, 0o600)
    config = isolated_home / ".config" / "opencode"
    config.mkdir(parents=True)
    link = config / "opencode.json"
    link.symlink_to(target)

    installed = agent_tracker(isolated_home, "install-plugin", "--bridge-command", "agent-tracker-dev serve")
    assert installed.returncode == 0, installed.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    info = target.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o600, 4242, 4243)
    assert '["./plugin/agent-tracker/index.js", {"bridgeCommand": ["agent-tracker-dev", "serve"]}]' in target.read_text()
    assert "// my keys" in target.read_text()
    first = config / "opencode.json.agent-tracker.bak"
    assert first.read_text() == CONFIG
    assert (stat.S_IMODE(first.stat().st_mode), first.stat().st_uid) == (0o600, 4242)
    assert sorted(p.name for p in dotfiles.iterdir()) == ["opencode.json"], "no litter in the dotfiles folder"

    removed = agent_tracker(isolated_home, "uninstall-plugin")
    assert removed.returncode == 0, removed.stderr
    assert link.is_symlink() and target.read_text() == CONFIG
    assert (stat.S_IMODE(target.stat().st_mode), target.stat().st_uid) == (0o600, 4242)
    assert first.read_text() == CONFIG, "the install's backup is never overwritten"
    second = config / "opencode.json.agent-tracker-2.bak"
    assert "agent-tracker/index.js" in second.read_text() and stat.S_IMODE(second.stat().st_mode) == 0o600
    assert agent_tracker(isolated_home, "install-plugin").returncode == 0
    assert sorted(p.name for p in config.glob("opencode.json*")) == [
        "opencode.json", "opencode.json.agent-tracker-2.bak", "opencode.json.agent-tracker-3.bak",
        "opencode.json.agent-tracker.bak"]
    record("cli_safety", symlinked_config="written through, 0600 and uid 4242 kept, backups 1-3 kept")


def test_install_plugin_refuses_a_read_only_config(isolated_home: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".opencode").mkdir(parents=True)
    config = project / ".opencode" / "opencode.json"
    config.write_text(CONFIG)
    config.chmod(0o444)
    before = listing(project)
    result = agent_tracker(isolated_home, "install-plugin", "--project", str(project))
    assert result.returncode == 1
    one_sentence(result, f"{config} is read-only (mode 0444); nothing was changed: make it writable "
                         f"(chmod u+w) and run the command again")
    assert listing(project) == before
    record("cli_safety", read_only_config="refused, nothing written")
