"""The bridge writes only its database and journal, never runs git (or anything), and treats every
path and command in an event as data.

Evidence, three independent ways:
* ``strace -f`` (when installed) records every execve and every syscall that can create, change or
  remove a file (open/openat for writing, creat, mkdir, rename, unlink, link, symlink, truncate,
  chmod, chown) of the bridge and anything it might start: the only exec is the bridge itself, and
  every write targets the database file, its ``-lock`` file, its ``-journal/`` folder (or creates
  the folders leading to the database);
* a fake ``git`` first in PATH records any invocation: it is never called, although the events
  talk about commits and pushes in a folder that looks like a git repository;
* a before/after listing of the temporary HOME, the project and the test's folder: nothing
  changed outside the database folder, and none of the ``$(touch ...)`` markers exists.
PYTHONDONTWRITEBYTECODE=1 keeps the interpreter's own bytecode cache out of the picture.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from reliability import (
    ROOT,
    BridgeProcess,
    Timer,
    bridge_env,
    drain_stderr,
    read_db,
    record,
)

pytestmark = pytest.mark.reliability

WRITE_SYSCALLS = "execve,execveat,open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat," \
                 "symlink,symlinkat,link,linkat,truncate,chmod,fchmodat,chown,fchownat,lchown"


def listing(root: Path) -> dict[str, Any]:
    out = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        out[str(path.relative_to(root))] = (stat.S_IFMT(info.st_mode), info.st_size,
                                            path.read_bytes() if stat.S_ISREG(info.st_mode) else None)
    return out


def hostile_events(tmp: Path, project: Path) -> list[tuple[str, dict[str, Any]]]:
    pwned = [tmp / f"pwned{i}" for i in range(12)]
    directories = [
        str(project),
        f"{project}/$(touch {pwned[0]})",
        f"{tmp}/x; touch {pwned[1]}",
        f"`touch {pwned[2]}`",
        "../../etc",
        f"{project}/../../../../../etc",
        f"{project}\ntouch {pwned[3]}",
        f"{project} && rm -rf {project}",
        "/",
        f"{project}/|touch {pwned[4]}",
    ]
    events: list[tuple[str, dict[str, Any]]] = []
    for i, directory in enumerate(directories):
        sid = f"sec{i}"
        events += [
            ("session.created", {"sessionID": sid, "directory": directory, "title": f"$(touch {pwned[5]})",
                                 "agent": {"id": "build", "model": "; rm -rf ~", "provider": "`id`"}}),
            ("tool.executed", {"sessionID": sid, "callID": f"c{i}a", "tool": "bash", "success": True,
                               "args": {"command": f"cd {directory} && git add -A && git commit -m \"$(touch {pwned[6]})\""},
                               "output": f"[main {i:x}abc12{i}] $(touch {pwned[7]})\n 1 file changed\n"}),
            ("tool.executed", {"sessionID": sid, "callID": f"c{i}b", "tool": "bash", "success": True,
                               "args": {"command": f"git -C {directory} push origin main; touch {pwned[8]}"},
                               "output": f"To {directory}\n   abc1234..def567{i}  main -> main\n"}),
            ("commit.completed", {"sessionID": sid, "commitHash": f"{i}ee{i}ffaa$(touch {pwned[9]})",
                                  "projectPath": directory, "taskDescription": f"| touch {pwned[10]}"}),
            ("commit.pushed", {"sessionID": sid, "projectPath": directory, "head": f"`touch {pwned[11]}`"}),
            ("grade", {"sessionID": sid, "grade": 2, "grader": "user", "reason": "$(reboot)"}),
            ("bug.reported", {"sessionID": sid, "agentId": f"agent{i}", "description": "rm -rf /",
                              "projectPath": directory, "commitHash": "HEAD~1"}),
            ("activity.logged", {"sessionID": sid, "kind": "$(id)", "data": {"path": directory, "cmd": "curl x | sh"}}),
            ("retrospective.recorded", {"sessionID": sid, "summary": f"{directory}", "lessons": [f"$(touch {pwned[0]})"]}),
            ("agent.reinstate", {"agentId": f"agent{i}", "reason": f"../../{directory}"}),
            ("session.deleted", {"sessionID": sid}),
        ]
    return events


async def test_the_bridge_writes_only_its_database_runs_nothing_and_never_calls_git(tmp_path: Path) -> None:
    timer = Timer()
    home = tmp_path / "home"
    project = tmp_path / "project"
    bin_dir = tmp_path / "bin"
    for folder in (home, project / ".git" / "refs" / "heads", bin_dir):
        folder.mkdir(parents=True)
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (project / "package.json").write_text('{"dependencies": {"react": "18"}, "scripts": {"postinstall": "touch PWNED"}}')
    git_log = tmp_path / "git-invocations.log"
    fake_git = bin_dir / "git"
    fake_git.write_text(f"#!/bin/sh\necho \"$0 $*\" >> '{git_log}'\nexit 0\n")
    fake_git.chmod(0o755)
    env = bridge_env(home, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONDONTWRITEBYTECODE="1")
    trace = tmp_path / "strace.txt"
    use_strace = shutil.which("strace") is not None
    command = [sys.executable, "-m", "bridge", "serve"]
    if use_strace:
        # -s 4096: strace cuts string arguments (argv) at 32 characters by default, so a long
        # checkout path would hide the command line the exec check compares against.
        command = ["strace", "-f", "-qq", "-s", "4096", "-o", str(trace), "-e", f"trace={WRITE_SYSCALLS}", *command]
    before = {name: listing(folder) for name, folder in (("home", home), ("project", project), ("bin", bin_dir))}
    process = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE, env=env, cwd=str(ROOT))
    bridge = BridgeProcess(process)
    drain_stderr(bridge)
    events = hostile_events(tmp_path, project)
    try:
        init = await bridge.initialize(project)
        db = Path(init["database"]["path"])
        assert db == home / ".config" / "opencode" / "agent-tracker.lmdb"
        for method, params in events:
            bridge.notify(method, params)
        for query in ({"agentId": "build"}, {"sessionID": "sec1"}):
            assert "agentId" in await bridge.request("agent.status", query)
        answers = [await bridge.request_raw("report", {"projectPath": path}) for path in
                   (str(project), f"{project}/$(touch {tmp_path}/pwned0)", "../../etc")]
        assert all("result" in a for a in answers), answers
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()

    assert not git_log.exists(), f"git was run: {git_log.read_text()}"
    markers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("pwned")) + \
        ([] if not (project / "PWNED").exists() else ["PWNED"])
    assert markers == [], f"a path or command from an event was executed: {markers}"
    after = {name: listing(folder) for name, folder in (("home", home), ("project", project), ("bin", bin_dir))}
    assert after["project"] == before["project"], "the project folder changed"
    assert after["bin"] == before["bin"]
    database_dir = str(db.parent.relative_to(home))
    changed_in_home = {p for p in set(after["home"]) | set(before["home"])
                       if after["home"].get(p) != before["home"].get(p)}
    outside = {p for p in changed_in_home if not p.startswith(database_dir) and
               p not in (".config", ".config/opencode")}
    assert outside == set(), f"the bridge changed files in HOME outside its database folder: {outside}"
    stored = read_db(db)
    assert stored["agents"], "the events were not even recorded"

    figures: dict[str, Any] = {"events": len(events), "git_invocations": 0, "executed_markers": 0}
    if use_strace:
        execs, writes = audit(trace.read_text(errors="replace"), db)
        assert len(execs) == 1 and f'["{sys.executable}", "-m", "bridge", "serve"]' in execs[0], \
            f"the bridge started other programs: {execs}"
        allowed = (str(db), f"{db}-lock", f"{db}-journal")
        strays = [(call, path) for call, path in writes
                  if not (path.startswith(allowed) or (call in ("mkdir", "mkdirat") and str(db).startswith(path + "/")))]
        assert strays == [], f"writes outside the database and journal: {strays[:20]}"
        figures.update(strace_execs=len(execs), strace_writes=len(writes), strace_writes_outside=0)
    else:
        figures.update(strace="not installed: fake git + listings only")
    record("security", **figures, seconds=timer.seconds)


_CALL = re.compile(r'^\d+\s+(\w+)\((.*)$')
_PATH = re.compile(r'"((?:[^"\\]|\\.)*)"')
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")


def audit(text: str, db: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """(execve lines, [(syscall, path)] of every successful call that can create/change/remove a file)."""
    execs, writes = [], []
    for line in text.splitlines():
        match = _CALL.match(line)
        if not match:
            continue
        call, rest = match.groups()
        if "= -1 " in rest or "<unfinished" in rest:
            if "<unfinished" not in rest:
                continue
        if call in ("execve", "execveat"):
            execs.append(line)
            continue
        if call in ("open", "openat") and not any(flag in rest for flag in _WRITE_FLAGS):
            continue
        paths = [bytes(p, "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")
                 for p in _PATH.findall(rest)]
        for path in paths[:2] if call.startswith(("rename", "link", "symlink")) else paths[:1]:
            writes.append((call, path))
    return execs, writes
