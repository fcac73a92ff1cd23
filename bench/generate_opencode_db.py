"""Generate a synthetic OpenCode history database (opencode.db) with the real layout.

The layout is not invented: every table and index is created from the DDL stored in the
real database OpenCode 1.18.33 wrote (tests/fixtures/opencode/opencode.db, see the README
there), and the row shapes (message and part JSON) are that database's own rows, varied: ids,
times, token counts, costs, tool names, inputs and outputs. Per session: one user prompt, then
assistant messages of one model call each (step-start, a tool call, sometimes text, reasoning
or a patch, step-finish with the usage), and a final answer; about one session in ten is a
subagent's child session. The session rows carry the sums of their step-finish usage, as
OpenCode keeps them. The ``event`` table (OpenCode's event log) stays empty: nothing reads it.

    .venv/bin/python bench/generate_opencode_db.py --output /tmp/opencode.db \
        [--sessions 10000] [--parts 1000000] [--seed 1]

Prints one JSON line at the end: sessions, messages, parts, bytes, seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import string
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import orjson

ROOT = Path(__file__).resolve().parent.parent
REAL_DATABASE = ROOT / "tests" / "fixtures" / "opencode" / "opencode.db"
PRICES = {  # USD per million tokens, per model: input, output, cache read, cache write
    ("anthropic", "claude-sonnet-4-5"): (3.0, 15.0, 0.3, 3.75),
    ("openai", "gpt-5"): (1.25, 10.0, 0.125, 0.0),
    ("ollama", "qwen3-coder"): (0.0, 0.0, 0.0, 0.0),
}
AGENTS = ("build", "build", "build", "plan")
ALPHABET = string.ascii_letters + string.digits
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def real_layout(source: Path = REAL_DATABASE) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The DDL of every table and index of the real database, in creation order, and its
    migration rows."""
    connection = sqlite3.connect(f"file:{source}?mode=ro&immutable=1", uri=True)
    try:
        ddl = [sql for (sql,) in connection.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
        migrations = connection.execute("SELECT id, time_completed FROM migration").fetchall()
    finally:
        connection.close()
    if not ddl:
        sys.exit(f"{source} holds no schema")
    return ddl, migrations


def real_templates(source: Path = REAL_DATABASE) -> dict[str, Any]:
    """Message and part JSON of the real database, by kind (``user``, ``assistant``, and one per
    part type; tool parts by tool name and status)."""
    connection = sqlite3.connect(f"file:{source}?mode=ro&immutable=1", uri=True)
    templates: dict[str, Any] = {}
    try:
        for (data,) in connection.execute("SELECT data FROM message ORDER BY time_created"):
            info = json.loads(data)
            templates.setdefault(info["role"], info)
        for (data,) in connection.execute("SELECT data FROM part ORDER BY id"):
            part = json.loads(data)
            kind = part["type"]
            if kind == "tool":
                kind = f"tool:{part['tool']}:{part['state']['status']}"
            templates.setdefault(kind, part)
    finally:
        connection.close()
    for needed in ("user", "assistant", "text", "step-start", "step-finish", "patch", "tool:bash:completed",
                   "tool:read:error", "tool:read:completed", "tool:task:completed"):
        if needed not in templates:
            sys.exit(f"{source} has no {needed} row to copy the shape from")
    return templates


def _json(value: Any) -> str:
    """Compact JSON text, as OpenCode stores it (a TEXT column, not a blob)."""
    return orjson.dumps(value).decode()


class Ids:
    """OpenCode-like ids (prefix, 12 hex digits that grow with time, 14 random characters):
    sorting by id is sorting by creation."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.counter = 0x228000000000

    def __call__(self, prefix: str) -> str:
        self.counter += self.rng.randint(1, 4096)
        return f"{prefix}_{self.counter:012x}" + "".join(self.rng.choices(ALPHABET, k=14))


_WORDS = ("the", "test", "passes", "file", "function", "error", "line", "module", "return", "value", "src/app.py",
          "import", "class", "def", "ok", "failed", "assert", "config", "change", "diff", "\n")


class Corpus:
    """Text for outputs and answers: slices of one random word stream (fast to cut)."""

    def __init__(self, rng: random.Random, size: int = 1 << 20) -> None:
        self.rng = rng
        self.text = " ".join(rng.choices(_WORDS, k=size // 5))[:size]

    def __call__(self, low: int, high: int) -> str:
        size = self.rng.randint(low, high)
        start = self.rng.randrange(0, len(self.text) - size)
        return self.text[start:start + size]


class Generator:
    def __init__(self, rng: random.Random, templates: dict[str, Any]) -> None:
        self.rng = rng
        self.text = Corpus(rng)
        self.t = templates
        self.ids = Ids(rng)
        self.commit = 0

    def plan(self, parts: int) -> list[int]:
        """Parts per assistant message for a session of ``parts`` parts (user text and final answer
        included): tool messages of 3-4 parts, leftovers as extra tool calls."""
        remaining = max(parts - 1 - 3, 0)
        sizes: list[int] = []
        while remaining >= 3:
            size = 4 if remaining >= 4 and (remaining - 4 == 0 or remaining - 4 >= 3) else 3
            sizes.append(size)
            remaining -= size
        if remaining and sizes:
            sizes[-1] += remaining
        return sizes

    def tool_part(self, directory: str, now: int) -> tuple[dict[str, Any], int]:
        """A tool part shaped like the real one of that tool and state (shallow copies of it)."""
        rng, text, t = self.rng, self.text, self.t
        roll = rng.random()
        if roll < 0.35:
            template = t["tool:bash:completed"]
            kind = rng.random()
            if kind < 0.05:
                self.commit += 1
                digest = f"{self.commit * 2654435761 % (1 << 28):07x}"
                command = "git add -A && git commit -m 'feat: change'"
                output = f"[main {digest}] feat: change\n 2 files changed, 14 insertions(+)\n"
                exit_code = 0
            elif kind < 0.07:
                command, output, exit_code = "git push origin main", "To origin\n   abc1234..def5678  main -> main\n", 0
            elif kind < 0.22:
                command, output, exit_code = "pytest -q", text(100, 1500) + "\n1 failed", 1
            else:
                command, output, exit_code = "pytest -q", text(50, 1200) + "\n12 passed", 0
            state = {**template["state"], "input": {"command": command, "description": "Run it"}, "output": output,
                     "metadata": {"output": output, "exit": exit_code, "truncated": False}, "title": command}
        elif roll < 0.65:
            template = t["tool:read:completed"]
            path = f"{directory}/src/module_{rng.randint(1, 60)}.py"
            output = f"<path>{path}</path>\n<type>file</type>\n<content>\n{text(200, 2500)}\n</content>"
            metadata = template["state"]["metadata"]
            state = {**template["state"], "input": {"filePath": path}, "output": output, "title": path,
                     "metadata": {**metadata, "preview": output[:200], "display": {**metadata["display"], "path": path}}}
        elif roll < 0.72:
            template = t["tool:read:error"]
            state = {**template["state"], "input": {"filePath": f"missing_{rng.randint(1, 99)}.txt"},
                     "error": f"File not found: {directory}/missing.txt"}
        elif roll < 0.74:
            template = t["tool:task:completed"]
            state = {**template["state"], "output": f'<task id="ses_x" state="completed">\n<task_result>\n'
                                                     f'{text(50, 400)}\n</task_result>\n</task>'}
        else:
            name = rng.choice(("edit", "grep", "glob", "write", "list"))
            template = {**t["tool:bash:completed"], "tool": name}
            tool_input = {"pattern": "def main", "path": directory} if name in ("grep", "glob") else \
                {"filePath": f"{directory}/src/app.py", "oldString": "a", "newString": "b"}
            state = {**template["state"], "input": tool_input, "output": text(20, 600), "metadata": {"truncated": False},
                     "title": name}
        duration = rng.randint(5, 3000)
        state["time"] = {"start": now, "end": now + duration}
        return {**template, "callID": f"call_{self.ids.counter:x}", "state": state}, duration

    def usage(self, provider: str, model: str) -> tuple[float, dict[str, Any]]:
        rng = self.rng
        cached = rng.randint(0, 40_000)
        fresh = rng.randint(50, 6_000)
        reasoning = rng.choice((0, 0, rng.randint(10, 800)))
        output = rng.randint(5, 1_500)
        price = PRICES[(provider, model)]
        cost = (fresh * price[0] + (output + reasoning) * price[1] + cached * price[2]) / 1_000_000
        tokens = {"total": fresh + output + reasoning + cached, "input": fresh, "output": output,
                  "reasoning": reasoning, "cache": {"write": 0, "read": cached}}
        return cost, tokens

    def session(self, number: int, parts: int, now: int, project: tuple[str, str],
                parent: str | None) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """The rows of one session: ("session" | "message" | "part", values)."""
        rng, ids, t = self.rng, self.ids, self.t
        sid = ids("ses")
        project_id, directory = project
        agent = "general" if parent else rng.choice(AGENTS)
        provider, model = rng.choice(list(PRICES))
        created = now
        totals = [0.0, 0, 0, 0, 0, 0]
        user_id = ids("msg")
        user = dict(t["user"], agent=agent, model={"providerID": provider, "modelID": model},
                    time={"created": now}, summary={"diffs": []})
        yield "message", (user_id, sid, now, now + 5, _json(user))
        text = dict(t["text"], text=self.text(40, 600))
        yield "part", (ids("prt"), user_id, sid, now + 1, now + 1, _json(text))
        now += rng.randint(200, 2000)
        sizes = self.plan(parts) + [3]
        for index, size in enumerate(sizes):
            final = index == len(sizes) - 1
            mid = ids("msg")
            started = now
            rows: list[tuple[Any, ...]] = []
            rows.append((ids("prt"), mid, sid, now, now, _json(t["step-start"])))
            extra = size - 3
            kinds = ["text"] if final else ["tool"] + ["tool" if k else rng.choice(("text", "reasoning", "patch", "tool"))
                                                       for k in range(extra)]
            for kind in kinds:
                now += rng.randint(5, 300)
                if kind == "tool":
                    part, duration = self.tool_part(directory, now)
                    now += duration
                elif kind == "patch":
                    part = dict(t["patch"], files=[f"{directory}/src/app.py"])
                elif kind == "reasoning":
                    part = {"type": "reasoning", "text": self.text(50, 800), "time": {"start": now, "end": now + 40}}
                else:
                    part = dict(t["text"], text=self.text(20, 800), time={"start": now, "end": now + 30})
                rows.append((ids("prt"), mid, sid, now, now, _json(part)))
            cost, tokens = self.usage(provider, model)
            now += rng.randint(50, 800)
            finish = "stop" if final else "tool-calls"
            step = dict(t["step-finish"], reason=finish, tokens=tokens, cost=cost)
            rows.append((ids("prt"), mid, sid, now, now, _json(step)))
            info = dict(t["assistant"], parentID=user_id, mode=agent, agent=agent,
                        path={"cwd": directory, "root": directory}, cost=cost, tokens=tokens,
                        modelID=model, providerID=provider, time={"created": started, "completed": now + 2},
                        finish=finish)
            yield "message", (mid, sid, started, now + 2, _json(info))
            for row in rows:
                yield "part", row
            totals[0] += cost
            for k, value in enumerate((tokens["input"], tokens["output"], tokens["reasoning"],
                                       tokens["cache"]["read"], tokens["cache"]["write"])):
                totals[k + 1] += value
            now += rng.randint(10, 400)
        model_json = json.dumps({"id": model, "providerID": provider, "variant": "default"})
        yield "session", (sid, project_id, parent, f"session-{number}", directory, f"Session {number}", "1.18.33",
                          0, 0, 0, totals[0], *totals[1:], agent, model_json, created, now)


def generate(output: Path, sessions: int, parts: int, seed: int = 1, source: Path = REAL_DATABASE) -> dict[str, Any]:
    started = time.perf_counter()
    if parts < sessions * 7:
        sys.exit("--parts must be at least 7 per session (a prompt, one tool message, a final answer)")
    ddl, migrations = real_layout(source)
    templates = real_templates(source)
    rng = random.Random(seed)
    generator = Generator(rng, templates)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{output}{suffix}").unlink(missing_ok=True)
    connection = sqlite3.connect(output, isolation_level=None)
    connection.execute("PRAGMA journal_mode = OFF")
    connection.execute("PRAGMA synchronous = OFF")
    connection.execute("BEGIN")
    for sql in ddl:
        connection.execute(sql)
    connection.executemany('INSERT INTO "migration" (id, time_completed) VALUES (?, ?)', migrations)
    projects = []
    for number in range(20):
        project_id = f"{rng.getrandbits(160):040x}"
        directory = f"/home/user/code/project-{number:02d}"
        projects.append((project_id, directory))
        connection.execute("INSERT INTO project (id, worktree, vcs, time_created, time_updated, sandboxes) "
                           "VALUES (?, ?, 'git', ?, ?, '[]')", (project_id, directory, START_MS, START_MS))
    per_session, leftover = divmod(parts, sessions)
    counts = {"session": 0, "message": 0, "part": 0}
    batches: dict[str, list[tuple[Any, ...]]] = {"session": [], "message": [], "part": []}
    sql = {
        "session": "INSERT INTO session (id, project_id, parent_id, slug, directory, title, version, summary_additions, "
                   "summary_deletions, summary_files, cost, tokens_input, tokens_output, tokens_reasoning, "
                   "tokens_cache_read, tokens_cache_write, agent, model, time_created, time_updated) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "message": "INSERT INTO message (id, session_id, time_created, time_updated, data) VALUES (?, ?, ?, ?, ?)",
        "part": "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data) VALUES (?, ?, ?, ?, ?, ?)",
    }
    # The session rows go in first (the foreign keys point at them), so each session's rows are
    # produced whole and its row is flushed before its messages and parts.
    now = START_MS
    parent: str | None = None
    for number in range(sessions):
        project = projects[number % len(projects)]
        size = per_session + (1 if number < leftover else 0)
        child_of = parent if parent is not None and rng.random() < 0.1 else None
        rows = list(generator.session(number, size, now, project, child_of))
        session_row = rows.pop()[1]
        batches["session"].append(session_row)
        for kind, row in rows:
            batches[kind].append(row)
        if child_of is None:
            parent = session_row[0]
        now = session_row[-1] + rng.randint(1_000, 600_000)
        if len(batches["part"]) >= 20_000 or number == sessions - 1:
            for kind in ("session", "message", "part"):
                connection.executemany(sql[kind], batches[kind])
                counts[kind] += len(batches[kind])
                batches[kind].clear()
    connection.execute("COMMIT")
    connection.execute("PRAGMA journal_mode = WAL")  # as OpenCode keeps it
    connection.close()
    return {"sessions": counts["session"], "messages": counts["message"], "parts": counts["part"],
            "bytes": output.stat().st_size, "seconds": round(time.perf_counter() - started, 3)}


def generate_in_subprocess(path: Path, sessions: int, parts: int) -> dict[str, Any]:
    """Generate ``path`` in another process (the caller's peak RSS stays its own); says what it made."""
    import subprocess

    made = subprocess.run([sys.executable, __file__, "--output", str(path), "--sessions", str(sessions),
                           "--parts", str(parts)], capture_output=True, text=True, check=True)
    generated: dict[str, Any] = json.loads(made.stdout.strip().splitlines()[-1])
    print(f"generated {path.name}: {generated['sessions']:,} sessions, {generated['messages']:,} messages, "
          f"{generated['parts']:,} parts, {generated['bytes'] / 2**20:,.0f} MiB in {generated['seconds']:.1f} s")
    return generated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--parts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--source", type=Path, default=REAL_DATABASE, help="the real database whose layout is copied")
    args = parser.parse_args(argv)
    result = generate(args.output, args.sessions, args.parts, args.seed, args.source)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
