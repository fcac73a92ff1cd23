"""Real OpenCode, end to end: OpenCode 1.18 + our plugin + our bridge + a scripted model.

The model is a small OpenAI-compatible server on 127.0.0.1 (examples/opencode-plugin/
scripted-model/server.py) that makes tool calls from a script. OpenCode really runs them: a
``git commit``, the agent's ``tracker_grade``, a ``git push`` to a local bare remote; then the
user's ``/grade``, and the session is deleted. The central database is then read through the
CLI (``agent-tracker status --json`` and ``export --format json``).

Offline-safe: OpenCode's own npm install of ``@opencode-ai/plugin`` in each config folder is
done beforehand (OpenCode skips it when ``package-lock.json`` already lists every dependency),
and no request is sent before the server prints its "listening" line.

Set ``UPDATE_PLUGIN_FIXTURES=1`` to copy the recorded hook payloads of the run into
examples/opencode-plugin/test/fixtures/ (they feed the Node tests).

Another run reports a bug with `/bug` (the agent's SP drops to 0), sees its next scripted tool call
blocked with the halt guard's message (the model gets it as the tool's error), reinstates the agent
with `agent-tracker reinstate` from a shell, and then lets the model start a subagent through the
`task` tool: its child session counts for the parent session's setup in the report.

A further run keeps OpenCode's own history: two sessions and a subagent's child session with a
priced model (tests/fixtures/opencode/scenario.json), nothing deleted; it leaves the real
``opencode.db``, OpenCode's HTTP view of it and the plugin's recording in
tests/fixtures/opencode/fresh/ (``UPDATE_OPENCODE_FIXTURES=1``: the committed fixtures; see
tests/fixtures/opencode/README.md). A third checks where the binary puts its database.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from bridge.opencode.history import OpenCodeHistory
from bridge.opencode.install import install_plugin
from bridge.opencode.location import opencode_database_path
from bridge.opencode.sessions import Tokens

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
PLUGIN_PKG = REPO / "examples" / "opencode-plugin"
FIXTURES = PLUGIN_PKG / "test" / "fixtures"
MODEL_SERVER = PLUGIN_PKG / "scripted-model" / "server.py"
# both under the plugin's node_modules: gitignored, and out of the way of its `npm ci`
NPM_CACHE = PLUGIN_PKG / "node_modules" / ".cache" / "npm"
OPENCODE_PREFIX = PLUGIN_PKG / "node_modules" / ".opencode-e2e"
OPENCODE_VERSION = "1.18.33"
OPENCODE_ENV = {
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_SHARE": "1",
}

COMMIT_CMD = "echo 'feature line' >> feature.txt && git add feature.txt && git commit -m 'feat: add feature line'"
SCRIPT = {
    "e2e": [
        {"tool_calls": [{"name": "bash", "arguments": {"command": COMMIT_CMD, "description": "Commit the feature"}}]},
        {"tool_calls": [{"name": "tracker_grade", "arguments": {"grade": 2, "reason": "small, tested change"}}]},
        {"tool_calls": [{"name": "bash", "arguments": {"command": "git push origin main", "description": "Push"}}]},
        {"tool_calls": [{"name": "bash", "arguments": {"command": "false", "description": "A failing command"}}]},
        {"text": "Committed and pushed."},
    ]
}


# ---------------------------------------------------------------------------------------------
# helpers


def _run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True, timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def opencode_binary() -> Path:
    """The OpenCode binary, from the opencode-ai npm package (its platform binary ships as an
    optional dependency), installed once into the plugin's gitignored node_modules."""
    prefix = OPENCODE_PREFIX
    npm = shutil.which("npm")
    if not (PLUGIN_PKG / "node_modules" / "vscode-jsonrpc").is_dir():
        # the plugin's own `npm ci` first: it would wipe node_modules (and OpenCode) later
        if npm is None:
            pytest.skip("npm is not installed")
        proc = _run([npm, "ci", "--no-audit", "--no-fund"], cwd=PLUGIN_PKG, timeout=600)
        if proc.returncode != 0:
            pytest.skip(f"npm ci failed in {PLUGIN_PKG} (registry unreachable?): {proc.stderr[-2000:]}")
    if not (prefix / "node_modules" / "opencode-ai").is_dir():
        if npm is None:
            pytest.skip("npm is not installed, so the opencode-ai package cannot be installed")
        prefix.mkdir(parents=True, exist_ok=True)
        proc = _run([npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--no-save",
                     "--cache", str(NPM_CACHE), f"opencode-ai@{OPENCODE_VERSION}"], cwd=prefix, timeout=600)
        if proc.returncode != 0:
            pytest.skip(f"cannot install opencode-ai@{OPENCODE_VERSION} with npm: {proc.stderr[-2000:]}")
    found = sorted((prefix / "node_modules").glob("opencode-*-*/bin/opencode"))
    found = [c for c in found if "baseline" not in c.parent.parent.name] + [c for c in found if "baseline" in c.parent.parent.name]
    for candidate in found:
        proc = _run([str(candidate), "--version"], timeout=60)
        if proc.returncode == 0 and proc.stdout.strip() == OPENCODE_VERSION:
            return candidate
    pytest.skip(f"opencode-ai@{OPENCODE_VERSION} installed no runnable OpenCode binary for this platform")


def _npm_preinstall(folder: Path, deps: dict[str, str], env: dict[str, str]) -> None:
    """Install what OpenCode would install in a config folder, so OpenCode skips its own install."""
    folder.mkdir(parents=True, exist_ok=True)
    package_path = folder / "package.json"
    package = json.loads(package_path.read_text()) if package_path.exists() else {}
    package.setdefault("dependencies", {}).update({k: v for k, v in deps.items() if k not in package.get("dependencies", {})})
    package_path.write_text(json.dumps(package, indent=2) + "\n")
    proc = _run(["npm", "install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts",
                 "--cache", str(NPM_CACHE)], cwd=folder, env=env, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"npm install in {folder} failed (registry unreachable?): {proc.stderr[-1500:]}")


class Http:
    def __init__(self, base: str, directory: Path) -> None:
        self.base = base
        self.directory = str(directory)

    def call(self, method: str, path: str, body: Any = None, timeout: float = 90) -> tuple[int, Any]:
        sep = "&" if "?" in path else "?"
        url = f"{self.base}{path}{sep}directory={urllib.parse.quote(self.directory)}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"content-type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")


class Proc:
    """A child process whose stdout lines are collected by a thread."""

    def __init__(self, cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log = log.open("w")
        self.lines: queue.Queue[str] = queue.Queue()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.write(line)
            self.log.flush()
            self.lines.put(line)

    def wait_for(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if needle in line:
                return line
        raise AssertionError(f"{needle!r} not seen within {timeout}s; see {self.log.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.thread.join(timeout=5)
        self.log.close()


def _cli(args: list[str], env: dict[str, str]) -> Any:
    proc = _run([sys.executable, "-m", "bridge", *args], cwd=REPO, env=env, timeout=60)
    assert proc.returncode == 0, f"agent-tracker {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


def _wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _agent(status: Any, agent_id: str) -> dict[str, Any]:
    agents = [a for a in _walk(status) if a.get("agentId", a.get("id")) == agent_id and "totalCommits" in a]
    assert agents, f"agent {agent_id} not in {status}"
    return agents[0]


def _processes_in(directory: Path) -> list[int]:
    """PIDs of processes whose working directory is ``directory`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == directory:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _walk(value: Any):
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


# ---------------------------------------------------------------------------------------------
# one OpenCode server with our plugin, a scripted model and a git project


@dataclass
class Run:
    """What :func:`running_opencode` set up; ``opencode`` is running while the block runs."""

    tmp: Path
    home: Path
    project: Path
    remote: Path
    database: Path
    record: Path
    model_log: Path
    env: dict[str, str]
    http: Http
    opencode: Proc

    @property
    def cli_env(self) -> dict[str, str]:
        return {k: v for k, v in self.env.items() if k != "AGENT_TRACKER_PLUGIN_RECORD"}

    def opencode_db(self) -> Path:
        """Where OpenCode keeps its history for this run (release channel, no OPENCODE_DB)."""
        return Path(self.env["XDG_DATA_HOME"]) / "opencode" / "opencode.db"


@contextmanager
def running_opencode(tmp_path: Path, scripts: dict[str, Any], model_cost: dict[str, float] | None = None,
                     permission: dict[str, str] | None = None,
                     configure: Callable[[Path], None] | None = None) -> Iterator[Run]:
    """A git project with a local bare remote and our plugin installed the way users install it,
    the scripted model, and ``opencode serve`` on it; everything stopped when the block ends.
    ``configure(project)`` may change the project's opencode.json before OpenCode starts."""
    binary = opencode_binary()
    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    home = tmp_path / "home"
    project = tmp_path / "project"
    remote = tmp_path / "remote.git"
    database = tmp_path / "db" / "agent-tracker.lmdb"
    record = tmp_path / "record.jsonl"
    for d in (home, project, database.parent):
        d.mkdir(parents=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENCODE", "AGENT_TRACKER"))},
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "GIT_AUTHOR_NAME": "E2E", "GIT_AUTHOR_EMAIL": "e2e@example.invalid",
        "GIT_COMMITTER_NAME": "E2E", "GIT_COMMITTER_EMAIL": "e2e@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
        "AGENT_TRACKER_DATABASE_PATH": str(database),
        "AGENT_TRACKER_PLUGIN_RECORD": str(record),
        **OPENCODE_ENV,
    }

    # a git project with a local bare remote
    for cmd in (["git", "init", "-q", "--bare", "-b", "main", str(remote)],
                ["git", "init", "-q", "-b", "main", str(project)]):
        assert _run(cmd, env=env).returncode == 0
    (project / "README.md").write_text("# e2e\n")
    for cmd in (["git", "add", "README.md"], ["git", "commit", "-q", "-m", "initial"],
                ["git", "remote", "add", "origin", str(remote)], ["git", "push", "-q", "-u", "origin", "main"]):
        proc = _run(cmd, cwd=project, env=env)
        assert proc.returncode == 0, proc.stderr

    # our plugin, installed the way users install it
    result = install_plugin(project, bridge_command=[sys.executable, "-m", "bridge", "serve"])
    assert (project / ".opencode" / "plugin" / "agent-tracker" / "index.js") in result.changed

    # the scripted model
    script = tmp_path / "script.json"
    script.write_text(json.dumps(scripts))
    model_log = tmp_path / "model.jsonl"
    model = Proc([sys.executable, str(MODEL_SERVER), "--script", str(script), "--log", str(model_log)],
                 tmp_path, env, tmp_path / "model.log")
    opencode: Proc | None = None
    try:
        port_line = model.wait_for("LISTENING", 20)
        model_port = int(port_line.split()[1])
        model_config: dict[str, Any] = {"name": "Scripted", "tool_call": True}
        if model_cost is not None:  # USD per million tokens: input, output, cache_read, cache_write
            model_config["cost"] = model_cost
        (project / "opencode.json").write_text(json.dumps({
            "$schema": "https://opencode.ai/config.json",
            "model": "scripted/scripted",
            "small_model": "scripted/scripted",
            "permission": {"edit": "allow", "bash": "allow", "webfetch": "allow", "external_directory": "allow",
                           **(permission or {})},
            "provider": {"scripted": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Scripted",
                "options": {"baseURL": f"http://127.0.0.1:{model_port}/v1", "apiKey": "scripted"},
                "models": {"scripted": model_config},
            }},
        }, indent=2))
        if configure is not None:
            configure(project)

        # what OpenCode would npm-install on start, done beforehand (offline-safe, no wait)
        plugin_dep = {"@opencode-ai/plugin": OPENCODE_VERSION}
        _npm_preinstall(project / ".opencode", plugin_dep, env)
        _npm_preinstall(home / ".config" / "opencode", plugin_dep, env)

        port = _free_port()
        opencode = Proc([str(binary), "serve", "--hostname", "127.0.0.1", "--port", str(port), "--print-logs"],
                        project, env, tmp_path / "opencode.log")
        opencode.wait_for("listening on", 60)
        http = Http(f"http://127.0.0.1:{port}", project)
        yield Run(tmp=tmp_path, home=home, project=project, remote=remote, database=database, record=record,
                  model_log=model_log, env=env, http=http, opencode=opencode)
    finally:
        if opencode is not None:
            opencode.stop()
        model.stop()


# ---------------------------------------------------------------------------------------------
# the session, tracked live


def test_real_opencode_session_is_tracked_end_to_end(tmp_path: Path) -> None:
    started = time.monotonic()
    with running_opencode(tmp_path, SCRIPT) as run:
        http, project, remote, env, record = run.http, run.project, run.remote, run.env, run.record
        database, opencode = run.database, run.opencode
        status, session = http.call("POST", "/session", {})
        assert status == 200, session
        sid = session["id"]

        status, reply = http.call("POST", f"/session/{sid}/message",
                                  {"parts": [{"type": "text", "text": "Add a feature line, commit and push. SCRIPT:e2e"}]},
                                  timeout=120)
        assert status == 200, reply
        texts = [p.get("text") for p in reply.get("parts", []) if p.get("type") == "text"]
        assert "Committed and pushed." in texts, reply

        log = _run(["git", "log", "--format=%h %s", "-n", "1"], cwd=project, env=env).stdout.split()
        commit_hash = log[0]
        remote_head = _run(["git", "rev-parse", "--short", "main"], cwd=remote, env=env).stdout.strip()
        assert remote_head == commit_hash, "the scripted git push did not reach the bare remote"

        # the push flushed: the commit and the push are in the database while the session is open
        cli_env = {k: v for k, v in env.items() if k != "AGENT_TRACKER_PLUGIN_RECORD"}
        build = _agent(_cli(["status", "--json", "--database", str(database)], cli_env), "build")
        assert build["totalCommits"] == 1, build
        assert build.get("totalPushes") == 1, build

        # the user's grade: handled by the plugin, the model is not called
        requests_before = sum(1 for _ in run.model_log.open())
        status, body = http.call("POST", f"/session/{sid}/command", {"command": "grade", "arguments": "5 excellent work"})
        assert status >= 400, f"/grade should stop OpenCode before it prompts the model: {status} {body}"
        time.sleep(0.5)
        assert sum(1 for _ in run.model_log.open()) == requests_before, "/grade called the model"

        # OpenCode's own session row (its running totals), before the session is deleted
        status, row = http.call("GET", f"/session/{sid}")
        assert status == 200 and row["tokens"]["input"] > 0, row

        status, _ = http.call("DELETE", f"/session/{sid}")
        assert status == 200
        status, _ = http.call("POST", "/instance/dispose")  # the plugin's dispose: shutdown + exit
        assert status == 200
        _wait_until(lambda: '"hook": "dispose"' in record.read_text() or '"hook":"dispose"' in record.read_text(),
                    30, "the plugin's dispose")
        if Path("/proc").is_dir():  # dispose sent shutdown + exit: the bridge is gone, OpenCode runs on
            others = lambda: [pid for pid in _processes_in(project) if pid != opencode.proc.pid]  # noqa: E731
            _wait_until(lambda: not others(), 15, "the bridge to exit after dispose")
            assert opencode.proc.poll() is None

    # the recorded hook payloads (optional fixture refresh)
    hooks = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
    kinds = {h["hook"] for h in hooks}
    assert {"init", "event", "chat.message", "tool.execute.before", "tool.execute.after",
            "command.execute.before", "dispose"} <= kinds, kinds
    after = [h for h in hooks if h["hook"] == "tool.execute.after" and h["input"]["tool"] == "bash"]
    assert [h["output"]["metadata"]["exit"] for h in after] == [0, 0, 1]
    if os.environ.get("UPDATE_PLUGIN_FIXTURES") == "1":
        shutil.copyfile(record, FIXTURES / f"opencode-{OPENCODE_VERSION}-session.jsonl")
        (FIXTURES / f"opencode-{OPENCODE_VERSION}-session.meta.json").write_text(json.dumps({
            "opencode": OPENCODE_VERSION, "project": str(project), "commit": commit_hash,
            "recordedBy": "tests/test_e2e_opencode.py",
        }, indent=2) + "\n")

    # the central database, through the CLI
    build = _agent(_cli(["status", "--json", "--database", str(database)], cli_env), "build")
    assert build["totalCommits"] == 1, build
    assert build["experiencePoints"] > 0, build
    assert build.get("pendingChanges", 0) == 0, build

    export = _cli(["export", "--format", "json", "--database", str(database)], cli_env)
    tables = export["tables"]
    sessions = [r for r in tables["sessions"] if r["sessionID"] == sid]
    assert len(sessions) == 1, tables["sessions"]
    session_row = sessions[0]
    assert (session_row["agentId"], session_row["model"], session_row["provider"]) == ("build", "scripted", "scripted")
    assert session_row["commits"] == 1 and session_row["pushes"] == 1, session_row
    assert session_row.get("deletedAt"), "session.deleted reached the bridge"
    assert session_row.get("failedToolCalls") == 1, "the failing bash call (exit 1) counts as a failure"
    commits = [r for r in tables["commits"] if r["hash"] == commit_hash]
    assert len(commits) == 1 and commits[0]["sessionID"] == sid and commits[0]["agentId"] == "build", tables["commits"]
    assert commits[0]["taskDescription"] == "feat: add feature line"
    grades = {(g["grader"], g["grade"], g["commitHash"]) for g in tables["grades"]}
    assert grades == {("agent", 2, commit_hash), ("user", 5, commit_hash)}, tables["grades"]
    projects = [r for r in tables["projects"] if r["path"] == str(project)]
    assert projects and projects[0]["lastPushedHead"] == commit_hash, tables["projects"]
    assert build["communicationScore"] > 60, "both grades moved the communication score"

    # what the session's model calls cost, live (usage.recorded): OpenCode's own row, to the token
    # (this model has no price: cost 0, a zero-cost setup whose value is "-", never infinity)
    setup = next(s for s in _cli(["report", "--json", "--database", str(database)], cli_env)["setups"]
                 if s["agent"] == "build")
    tokens = row["tokens"]
    assert setup["tokens"] == {"input": tokens["input"], "output": tokens["output"], "reasoning": tokens["reasoning"],
                               "cacheRead": tokens["cache"]["read"], "cacheWrite": tokens["cache"]["write"],
                               "total": tokens["input"] + tokens["output"] + tokens["reasoning"]
                               + tokens["cache"]["read"] + tokens["cache"]["write"]}
    assert setup["cost"] == row["cost"] == 0 and setup["zeroCost"] is True and setup["value"] is None
    assert setup["usage"]["messages"] == 5 and setup["usage"]["sessions"] == 1

    assert time.monotonic() - started < 180, "the e2e test must stay under 3 minutes"


# ---------------------------------------------------------------------------------------------
# /bug, the halt guard, a reinstatement from the shell, and a subagent credited to its parent


HALT_SCRIPTS = {
    "work": [
        {"tool_calls": [{"name": "bash", "arguments": {"command": COMMIT_CMD, "description": "Commit the feature"}}]},
        {"text": "Committed."},
    ],
    "blocked": [
        {"tool_calls": [{"name": "bash", "arguments": {"command": "echo blocked > blocked.txt", "description": "Write"}}]},
        {"text": "I am halted and stop here."},
    ],
    "again": [
        {"tool_calls": [{"name": "bash", "arguments": {"command": "echo again > again.txt", "description": "Write"}}]},
        {"tool_calls": [{"name": "task", "arguments": {"description": "Inspect the log", "prompt": "Show the last commit. SCRIPT:sub",
                                                       "subagent_type": "general"}}]},
        {"text": "Done again."},
    ],
    "sub": [
        {"tool_calls": [{"name": "bash", "arguments": {"command": "git log --oneline -n 1", "description": "Show the last commit"}}]},
        {"text": "The last commit adds the feature line."},
    ],
}


def _cli_text(args: list[str], env: dict[str, str]) -> str:
    proc = _run([sys.executable, "-m", "bridge", *args], cwd=REPO, env=env, timeout=60)
    assert proc.returncode == 0, f"agent-tracker {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _say(run: Run, sid: str, text: str) -> list[str]:
    """A user message; the texts of the assistant's answer."""
    status, reply = run.http.call("POST", f"/session/{sid}/message", {"parts": [{"type": "text", "text": text}]},
                                  timeout=180)
    assert status == 200, reply
    return [p.get("text") for p in reply.get("parts", []) if p.get("type") == "text"]


def test_real_opencode_bug_halt_reinstate_and_subagent(tmp_path: Path) -> None:
    started = time.monotonic()
    with running_opencode(tmp_path, HALT_SCRIPTS, permission={"task": "allow"}) as run:
        env, database = run.cli_env, str(run.database)
        status, session = run.http.call("POST", "/session", {})
        assert status == 200, session
        sid = session["id"]
        assert "Committed." in _say(run, sid, "Commit a feature line. SCRIPT:work")

        # /bug: the plugin answers it (the model is not called); a new agent's SP 1 -> 0 halts it
        # (the bug is stored at once, with the commit still pending before it)
        requests_before = sum(1 for _ in run.model_log.open())
        status, body = run.http.call("POST", f"/session/{sid}/command",
                                     {"command": "bug", "arguments": "the feature line is wrong"})
        assert status >= 400, f"/bug should stop OpenCode before it prompts the model: {status} {body}"
        assert sum(1 for _ in run.model_log.open()) == requests_before, "/bug called the model"
        build = _agent(_cli(["status", "--json", "--database", database], env), "build")
        assert (build["skillPoints"], build["totalBugs"], build["totalCommits"], build["halted"]) == (0, 1, 1, True)

        # the next scripted tool call is blocked; the model sees why and how to get going again
        assert "I am halted and stop here." in _say(run, sid, "Write a file. SCRIPT:blocked")
        assert not (run.project / "blocked.txt").exists(), "the halted agent's bash call ran"
        requests = [json.loads(line) for line in run.model_log.open()]
        seen = [json.dumps(r) for r in requests if "SCRIPT:blocked" in json.dumps(r)]
        assert any('agent \\"build\\" is halted (skill points 0 after 1 bug; the latest: a bug was reported: the '
                   'feature line is wrong)' in text and "agent-tracker reinstate build" in text for text in seen), \
            "the model was not told why its tool was blocked"

        # reinstated from a shell: the running plugin lets the next call run, and the model starts a subagent
        assert "active again" in _cli_text(["reinstate", "build", "--reason", "reviewed", "--database", database], env)
        assert "Done again." in _say(run, sid, "Write again and ask a subagent. SCRIPT:again")
        assert (run.project / "again.txt").read_text() == "again\n"
        status, listed = run.http.call("GET", "/session")
        assert status == 200, listed
        children = [s for s in listed if s.get("parentID") == sid]
        assert len(children) == 1, listed

        status, _ = run.http.call("POST", "/instance/dispose")
        assert status == 200
        _wait_until(lambda: '"hook":"dispose"' in run.record.read_text().replace(": ", ":"), 30, "the plugin's dispose")

    env, database = run.cli_env, str(run.database)
    report = _cli(["report", "--json", "--database", database], env)
    assert [(r["agent"], r["model"]) for r in report["setups"]] == [("build", "scripted/scripted")], report["setups"]
    (setup,) = report["setups"]
    assert (setup["sessions"], setup["commits"], setup["bugs"], setup["workflow"]) == (1, 1, 1, "build → general")
    (sub,) = setup["subagents"]
    assert (sub["agent"], sub["sessions"], sub["toolCalls"], sub["failedToolCalls"]) == ("general", 1, 1, 0)
    # build's own calls: the commit, the blocked one is not a call, the write, the task call
    assert setup["toolCalls"] == 1 + 1 + 1 + 1 and sub["workShare"] == 1 / 4
    assert (report["totals"]["sessions"], report["totals"]["subagentSessions"]) == (1, 1)
    tables = _cli(["export", "--format", "json", "--database", database], env)["tables"]
    child = next(r for r in tables["sessions"] if r["sessionID"] == children[0]["id"])
    assert (child["parentID"], child["agentId"]) == (sid, "general")
    summaries = [a for a in tables["activities"] if a["kind"] == "session"]
    assert sorted(a["sessionID"] for a in summaries) == sorted([sid, children[0]["id"]])  # ended at dispose
    kinds = [a["kind"] for a in tables["activities"] if a["agentId"] == "build" and a["kind"] != "session"]
    assert kinds == ["bug", "reinstate"]

    assert time.monotonic() - started < 180, "the e2e test must stay under 3 minutes"


# ---------------------------------------------------------------------------------------------
# OpenCode's own history (opencode.db): sessions kept, a priced model, a subagent


OPENCODE_FIXTURES = REPO / "tests" / "fixtures" / "opencode"
SCENARIO = OPENCODE_FIXTURES / "scenario.json"
# Every run leaves its database here (gitignored): the fast tests read it too when it is there.
FRESH_FIXTURES = OPENCODE_FIXTURES / "fresh"
HISTORY_RECORDING = FIXTURES / f"opencode-{OPENCODE_VERSION}-history.jsonl"


def _sqlite_snapshot(source: Path, target: Path) -> None:
    """A compact, consistent copy of an SQLite database (WAL content included), kept in WAL mode
    like the original; the source is opened read-only."""
    import sqlite3

    target.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("VACUUM")
        dst.execute("PRAGMA journal_mode=WAL")
    finally:
        dst.close()
        src.close()
    for suffix in ("-wal", "-shm"):
        assert not Path(f"{target}{suffix}").exists(), f"{target}{suffix} left behind"


def test_real_opencode_history_database(tmp_path: Path) -> None:
    """Real OpenCode writes its history to opencode.db: two sessions (agents build and plan) and a
    subagent's child session, a model priced per token, tool calls that succeed and fail, a commit
    and a push; nothing is deleted. The database (a compact copy), OpenCode's own HTTP view of the
    same sessions and the plugin's recording of the run are left in tests/fixtures/opencode/fresh/;
    UPDATE_OPENCODE_FIXTURES=1 (or UPDATE_PLUGIN_FIXTURES=1) makes them the committed fixtures."""
    import hashlib

    started = time.monotonic()
    scenario = json.loads(SCENARIO.read_text())
    with running_opencode(tmp_path, scenario["scripts"], model_cost=scenario["cost"],
                          permission={"task": "allow"}) as run:
        http = run.http
        # where OpenCode says its database is (the release channel: opencode.db under XDG_DATA_HOME)
        binary = opencode_binary()
        where = _run([str(binary), "db", "path"], cwd=run.project, env=run.env, timeout=60)
        assert where.returncode == 0, where.stderr
        db_path = Path(where.stdout.strip().splitlines()[-1])
        assert db_path == run.opencode_db(), db_path

        root_ids: list[str] = []
        for spec in scenario["sessions"]:
            status, session = http.call("POST", "/session", {})
            assert status == 200, session
            root_ids.append(session["id"])
            status, reply = http.call("POST", f"/session/{session['id']}/message",
                                      {"agent": spec["agent"], "parts": [{"type": "text", "text": spec["prompt"]}]},
                                      timeout=180)
            assert status == 200, reply
            final = scenario["scripts"][spec["prompt"].rsplit("SCRIPT:", 1)[1]][-1]["text"]
            assert final in [p.get("text") for p in reply.get("parts", []) if p.get("type") == "text"], reply

        commit_hash = _run(["git", "log", "--format=%h", "-n", "1"], cwd=run.project, env=run.env).stdout.strip()
        remote_head = _run(["git", "rev-parse", "--short", "main"], cwd=run.remote, env=run.env).stdout.strip()
        assert remote_head == commit_hash, "the scripted git push did not reach the bare remote"

        # OpenCode's own view of every session (children included), for the fast tests to compare with
        status, listed = http.call("GET", "/session")
        assert status == 200, listed
        api: dict[str, Any] = {"sessions": []}
        for info in sorted(listed, key=lambda s: (s["time"]["created"], s["id"])):
            status, messages = http.call("GET", f"/session/{info['id']}/message")
            assert status == 200, messages
            api["sessions"].append({"info": info, "messages": messages})
        children = [s["info"] for s in api["sessions"] if s["info"].get("parentID")]
        assert [c["parentID"] for c in children] == [root_ids[0]], "one subagent session, a child of the first"

        # the live database while OpenCode runs: WAL mode, read read-only where our reader finds it
        assert Path(f"{db_path}-wal").exists(), "OpenCode keeps its database in WAL mode"
        with OpenCodeHistory.open(env=run.env) as history:
            assert history.path == db_path and not history.immutable
            live = {s.id: s for s in history.sessions()}
        by_api = {s["info"]["id"]: s["info"] for s in api["sessions"]}
        assert set(live) == set(by_api)
        for sid, info in by_api.items():  # OpenCode's own totals, as its API serves them
            assert live[sid].cost == info["cost"] > 0, (live[sid], info)
            tokens = info["tokens"]
            assert live[sid].tokens == Tokens(tokens["input"], tokens["output"], tokens["reasoning"],
                                              tokens["cache"]["read"], tokens["cache"]["write"])
            assert live[sid].parent_id == info.get("parentID")

        status, _ = http.call("POST", "/instance/dispose")
        assert status == 200
        _wait_until(lambda: '"hook":"dispose"' in run.record.read_text().replace(": ", ":"), 30, "the plugin's dispose")

    # OpenCode has stopped: snapshot its database
    snapshot = tmp_path / "opencode.db"
    _sqlite_snapshot(db_path, snapshot)

    FRESH_FIXTURES.mkdir(parents=True, exist_ok=True)
    meta = {
        "opencode": OPENCODE_VERSION,
        "recordedBy": "tests/test_e2e_opencode.py::test_real_opencode_history_database",
        "scenarioSha256": hashlib.sha256(SCENARIO.read_bytes()).hexdigest(),
        "databasePath": str(db_path), "project": str(run.project), "commit": commit_hash,
        "rootSessions": root_ids, "childSessions": [c["id"] for c in children],
        "pluginRecording": str(HISTORY_RECORDING.relative_to(REPO)),
    }
    outputs = {
        "opencode.db": snapshot.read_bytes(),
        "opencode-api.json": (json.dumps(api, indent=1, sort_keys=True) + "\n").encode(),
        "plugin-record.jsonl": run.record.read_bytes(),
        "meta.json": (json.dumps(meta, indent=2) + "\n").encode(),
    }
    for stale in ("opencode.db-wal", "opencode.db-shm"):  # never pair a new database with an old WAL
        (FRESH_FIXTURES / stale).unlink(missing_ok=True)
    for name, data in outputs.items():
        (FRESH_FIXTURES / name).write_bytes(data)
    if os.environ.get("UPDATE_OPENCODE_FIXTURES") == "1" or os.environ.get("UPDATE_PLUGIN_FIXTURES") == "1":
        for name, data in outputs.items():
            if name == "plugin-record.jsonl":
                HISTORY_RECORDING.write_bytes(data)
            else:
                (OPENCODE_FIXTURES / name).write_bytes(data)

    # Live: what the plugin sent (usage.recorded) is OpenCode's own session rows. The subagent's
    # session counts for the setup of the session that started it.
    cli_env = run.cli_env
    live_report = _cli(["report", "--json", "--min-sessions", "1", "--database", str(run.database)], cli_env)
    setups = {s["agent"]: s for s in live_report["setups"]}
    (child,) = children
    build_id, plan_id = root_ids
    for agent, rows in (("build", [by_api[build_id], by_api[child["id"]]]), ("plan", [by_api[plan_id]])):
        got = setups[agent]
        assert got["tokens"] == {
            "input": sum(r["tokens"]["input"] for r in rows), "output": sum(r["tokens"]["output"] for r in rows),
            "reasoning": sum(r["tokens"]["reasoning"] for r in rows),
            "cacheRead": sum(r["tokens"]["cache"]["read"] for r in rows),
            "cacheWrite": sum(r["tokens"]["cache"]["write"] for r in rows), "total": got["tokens"]["total"]}, agent
        assert got["cost"] == pytest.approx(sum(r["cost"] for r in rows), rel=1e-12, abs=0), agent
    # never a setup of its own: a subagent of build's
    assert "general" not in setups and [sub["agent"] for sub in setups["build"]["subagents"]] == ["general"]

    # Imported from the database OpenCode wrote: the same report, column for column; imported into
    # the database the plugin filled live: nothing counted twice.
    imported = run.tmp / "imported.lmdb"
    result = _cli(["import-opencode", "--db", str(snapshot), "--database", str(imported), "--json"], cli_env)
    assert result["sessions"] == {"read": 3, "new": 3, "alreadyTracked": 0, "children": 1}, result
    # OpenCode's history cannot say which configuration version a past session ran with (issue 24:
    # imported sessions are the version "unknown"), so both are compared with the versions merged.
    merged = ["--by", "agent-model"]
    report = _cli(["report", "--json", "--min-sessions", "1", *merged, "--database", str(imported)], cli_env)
    live_merged = _cli(["report", "--json", "--min-sessions", "1", *merged, "--database", str(run.database)],
                       cli_env)
    assert _comparable(report) == _comparable(live_merged)
    again = _cli(["import-opencode", "--db", str(snapshot), "--database", str(run.database), "--json"], cli_env)
    assert again["sessions"]["alreadyTracked"] == 3 and again["toolCalls"]["counted"] == 0, again
    after = _cli(["report", "--json", "--min-sessions", "1", "--database", str(run.database)], cli_env)
    assert after["setups"] == live_report["setups"]

    assert time.monotonic() - started < 180, "the e2e test must stay under 3 minutes"


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    """Every figure of a report by setup; what says when it was made is left out."""
    return {"setups": {row["setup"] + " " + row["stack"]: {k: _without_versions(k, v) for k, v in row.items()
                                                           if k != "lastUsed"}
                       for row in report["setups"]},
            "totals": report["totals"], "usage": report["usage"],
            "recommendations": [rec["text"] for rec in report["recommendations"]]}


def _without_versions(key: str, value: Any) -> Any:
    """A row's subagents without the configuration versions they ran with (live only, see above)."""
    if key != "subagents":
        return value
    return [{k: v for k, v in sub.items() if k != "configVersions"} for sub in value]


def test_opencode_database_location_matches_our_reader(tmp_path: Path) -> None:
    """`opencode db path` (the binary's own answer) against bridge.opencode.history's rule, for
    the default data folder, XDG_DATA_HOME, and OPENCODE_DB absolute and relative."""
    binary = opencode_binary()
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "elsewhere").mkdir()  # OpenCode opens the database: its folder must exist
    base = {**{k: v for k, v in os.environ.items() if not k.startswith(("OPENCODE", "AGENT_TRACKER", "XDG_"))},
            "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_STATE_HOME": str(home / ".local" / "state"), **OPENCODE_ENV}
    cases = {
        "default": base,
        "xdg": {**base, "XDG_DATA_HOME": str(tmp_path / "data")},
        "absolute": {**base, "OPENCODE_DB": str(tmp_path / "elsewhere" / "history.db")},
        "relative": {**base, "XDG_DATA_HOME": str(tmp_path / "data"), "OPENCODE_DB": "custom.db"},
    }
    procs = {name: subprocess.Popen([str(binary), "db", "path"], cwd=tmp_path, env=env, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for name, env in cases.items()}  # concurrently: each start takes seconds
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (name, err)
        assert Path(out.strip().splitlines()[-1]) == opencode_database_path(cases[name]), (name, out)


# ---------------------------------------------------------------------------------------------
# issue 24: an agent's whole configuration, versioned, explained and handed back

PROMPT_V1 = "You are the e2e build agent, version one.\nCommit small changes."
PROMPT_V2 = "You are the e2e build agent, version two.\nCommit small changes.\nExplain nothing."
VERSION_SCRIPT = {"cfg": [
    {"tool_calls": [{"name": "bash", "arguments": {"command": COMMIT_CMD, "description": "Commit the feature"}}]},
    {"text": "Committed."},
]}


def _configure(project: Path, prompt: str, temperature: float, model_declares_temperature: bool) -> None:
    """opencode.json's agent.build (prompt, temperature), and whether the model declares temperature."""
    config_path = project / "opencode.json"
    config = json.loads(config_path.read_text())
    config["agent"] = {"build": {"prompt": prompt, "temperature": temperature}}
    config["provider"]["scripted"]["models"]["scripted"]["temperature"] = model_declares_temperature
    config_path.write_text(json.dumps(config, indent=2))


def _session_with_commit(run: Run, grade: str) -> None:
    http = run.http
    status, session = http.call("POST", "/session", {})
    assert status == 200, session
    status, reply = http.call("POST", f"/session/{session['id']}/message",
                              {"parts": [{"type": "text", "text": "Commit a feature line. SCRIPT:cfg"}]}, timeout=120)
    assert status == 200 and "Committed." in [p.get("text") for p in reply.get("parts", [])], reply
    status, _ = http.call("POST", f"/session/{session['id']}/command", {"command": "grade", "arguments": grade})
    assert status >= 400  # handled by the plugin: OpenCode does not prompt the model
    assert http.call("DELETE", f"/session/{session['id']}")[0] == 200


def _stop_cleanly(run: Run, opencode: Proc) -> None:
    """dispose (the plugin's shutdown: the bridge flushes and exits), then stop OpenCode."""
    disposes = run.record.read_text().replace(": ", ":").count('"hook":"dispose"') if run.record.exists() else 0
    assert run.http.call("POST", "/instance/dispose")[0] == 200
    _wait_until(lambda: run.record.read_text().replace(": ", ":").count('"hook":"dispose"') > disposes, 30,
                "the plugin's dispose")
    opencode.stop()
    if Path("/proc").is_dir():
        _wait_until(lambda: not _processes_in(run.project), 15, "the bridge to exit")


def test_real_opencode_configuration_versions(tmp_path: Path) -> None:
    """Two runs of one project with another agent.build prompt and temperature: the model really
    gets each prompt (and a temperature only once it declares one), the report tells the two
    versions apart, `configs build` says what changed, and `recommend --write` writes the better
    version back into opencode.json, which OpenCode then loads (`opencode debug agent build`)."""
    started = time.monotonic()
    binary = opencode_binary()
    with running_opencode(tmp_path, VERSION_SCRIPT,
                          configure=lambda project: _configure(project, PROMPT_V1, 0.2, False)) as run:
        _session_with_commit(run, "5 the good one")
        _stop_cleanly(run, run.opencode)
        # the second run: another prompt and temperature, and a model that declares temperature
        _configure(run.project, PROMPT_V2, 0.7, model_declares_temperature=True)
        port = _free_port()
        second = Proc([str(binary), "serve", "--hostname", "127.0.0.1", "--port", str(port), "--print-logs"],
                      run.project, run.env, tmp_path / "opencode-v2.log")
        try:
            second.wait_for("listening on", 60)
            run.http = Http(f"http://127.0.0.1:{port}", run.project)
            _session_with_commit(run, "-1 worse")
            _stop_cleanly(run, second)
        finally:
            second.stop()

    # what the model was really sent: each run's prompt; a temperature only where the model declares it
    requests = [json.loads(line) for line in run.model_log.read_text().splitlines()]
    agent_calls = [r for r in requests if r.get("tools")]
    systems = ["\n".join(m["content"] if isinstance(m["content"], str) else json.dumps(m["content"])
                         for m in r["messages"] if m["role"] == "system") for r in agent_calls]
    runs = [[r for r, system in zip(agent_calls, systems) if marker in system]
            for marker in ("version one", "version two")]
    assert len(runs[0]) == 2 and len(runs[1]) == 2, [len(r) for r in runs]  # the commit, then the text
    assert {r.get("temperature") for r in runs[0]} == {None} and {r.get("temperature") for r in runs[1]} == {0.7}

    env = run.cli_env
    database = str(run.database)
    report = _cli(["report", "--json", "--min-sessions", "1", "--database", database], env)
    rows = [row for row in report["setups"] if row["agent"] == "build"]
    assert sorted((row["sessions"], row["commits"], row["meanUserGrade"]) for row in rows) == [(1, 1, -1), (1, 1, 5)]
    v1, v2 = sorted(rows, key=lambda row: -row["meanUserGrade"])
    assert v1["configVersion"] != v2["configVersion"] and v1["versionLabel"].startswith("build@")
    assert (v1["configuration"]["prompt"], v1["configuration"]["temperature"]) == (PROMPT_V1, 0.2)
    assert "temperature" not in v1["configuration"]["sent"]  # configured 0.2, not sent: undeclared
    assert (v2["configuration"]["prompt"], v2["configuration"]["sent"]["temperature"]) == (PROMPT_V2, 0.7)
    assert v1["rank"] == 1

    versions = _cli(["configs", "build", "--json", "--database", database], env)["agents"]["build"]
    assert [v["version"] for v in versions] == [v2["configVersion"], v1["configVersion"]]
    # the system prompt (hashed, its <env> block left out) holds the agent's prompt: it changed too
    system = (v1["configuration"]["system"]["length"], v2["configuration"]["system"]["length"])
    assert system[1] - system[0] == len(PROMPT_V2) - len(PROMPT_V1)
    assert [v["change"] for v in versions] == [
        f"prompt: 2 lines changed; sent.temperature none → 0.7; system prompt changed ({system[0]} → {system[1]} "
        f"characters); temperature 0.2 → 0.7", "first version"]

    written = _cli(["recommend", str(run.project), "--write", "--min-sessions", "1", "--json",
                    "--database", database], env)
    assert written["recommendation"]["configVersion"] == v1["configVersion"] and written["written"]["changed"]
    config = json.loads((run.project / "opencode.json").read_text())
    assert (config["agent"]["build"]["prompt"], config["agent"]["build"]["temperature"]) == (PROMPT_V1, 0.2)
    assert config["provider"]["scripted"]["options"]["baseURL"].startswith("http://127.0.0.1:")  # the rest kept
    loaded = _run([str(binary), "debug", "agent", "build", "--pure"], cwd=run.project, env=env, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    agent = json.loads(loaded.stdout[loaded.stdout.index("{"):])
    assert (agent["prompt"], agent["temperature"], agent["model"]) == (
        PROMPT_V1, 0.2, {"providerID": "scripted", "modelID": "scripted"})
    assert time.monotonic() - started < 120, "the configuration e2e test must stay under 2 minutes"
