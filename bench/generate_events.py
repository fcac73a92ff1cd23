"""Write a realistic data set of N stored events (default 1,000,000) into an agent-tracker database.

"Events" are the records the report reads: sessions, commits, grade events (communication),
activities (bugs and other kinds) and retrospectives; agents and projects are added on top.
The mix follows what a year of OpenCode use across a dozen projects looks like:

* ~10% sessions (each with an agent, a provider/model and a project; a few switch model midway),
* ~30% commits (0-7 per session, depending on the setup's productivity),
* ~40% grades (an agent self-grade on most commits, a user grade on about half of them),
* ~20% activities (bugs, reinstates, test runs, notes) and a few retrospectives.

Each (agent, model, stack) setup has its own hidden quality, so the report has a real winner
per stack. Records are written DIRECTLY through Store.write, 100,000 per transaction, with
the exact key layout of protocol/storage.md. Deterministic for a given --seed.

    .venv/bin/python bench/generate_events.py --database /tmp/bench.lmdb --events 1000000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.config import BridgeConfig, ScoringRules  # noqa: E402
from bridge.protocol.grades import GRADE_NAMES  # noqa: E402
from bridge.tracking.scoring import AgentState, level_up  # noqa: E402
from bridge.store import Store, key  # noqa: E402
from bridge.timestamps import iso_utc as iso  # noqa: E402

PROJECTS = [
    # (path, stack, language, framework, manifest)
    ("/bench/projects/shop-api", "python/fastapi", "python", "fastapi", "pyproject.toml"),
    ("/bench/projects/billing", "python/fastapi", "python", "fastapi", "pyproject.toml"),
    ("/bench/projects/cms", "python/django", "python", "django", "pyproject.toml"),
    ("/bench/projects/ml-pipeline", "python/pytorch", "python", "pytorch", "pyproject.toml"),
    ("/bench/projects/storefront", "typescript/react", "typescript", "react", "package.json"),
    ("/bench/projects/dashboard", "typescript/react", "typescript", "react", "package.json"),
    ("/bench/projects/marketing-site", "typescript/next", "typescript", "next", "package.json"),
    ("/bench/projects/gateway", "rust/axum", "rust", "axum", "Cargo.toml"),
    ("/bench/projects/indexer", "rust", "rust", None, "Cargo.toml"),
    ("/bench/projects/edge-proxy", "go/gin", "go", "gin", "go.mod"),
    ("/bench/projects/cli-tools", "go", "go", None, "go.mod"),
    ("/bench/projects/legacy-shop", "php/laravel", "php", "laravel", "composer.json"),
]
AGENTS = ["build", "plan", "general", "review", "docs", "refactor"]
AGENT_WEIGHTS = [40, 12, 18, 10, 8, 12]
MODELS = [
    ("anthropic", "claude-sonnet-4-5"), ("anthropic", "claude-opus-4-1"), ("openai", "gpt-5"),
    ("openai", "gpt-5-mini"), ("google", "gemini-2.5-pro"), ("ollama", "qwen3-coder:30b"),
    ("openrouter", "deepseek/deepseek-chat-v3"),
]
MODEL_WEIGHTS = [30, 8, 22, 12, 14, 6, 8]
OTHER_ACTIVITIES = ["test-run", "lint", "note", "review-requested", "deploy"]
END = datetime(2026, 11, 1, tzinfo=timezone.utc)
DAYS = 365
BATCH = 100_000


def setup_quality(rng: random.Random, agent: str, provider: str, model: str, stack: str) -> tuple[float, float, float]:
    """(mean commits per session, probability a grade is good, bug probability per commit)."""
    seeded = random.Random(f"{agent}|{provider}/{model}|{stack}")
    productivity = 1.0 + seeded.random() * 3.0
    goodness = 0.35 + seeded.random() * 0.55
    bugs = 0.01 + seeded.random() * 0.12
    return productivity, goodness, bugs


def draw_grade(rng: random.Random, goodness: float) -> int:
    roll = rng.random()
    if roll < goodness * 0.35:
        return 5
    if roll < goodness:
        return 2
    if roll < goodness + (1 - goodness) * 0.6:
        return 1
    return -1


class Writer:
    """Buffers (db, key, value) and writes BATCH records per Store.write transaction."""

    def __init__(self, store: Store):
        self.store = store
        self.buffer: list[tuple[str, str, dict]] = []
        self.written = 0

    def put(self, db: str, record_key: str, value: dict) -> None:
        self.buffer.append((db, record_key, value))
        if len(self.buffer) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        batch = sorted(self.buffer, key=lambda item: (item[0], item[1]))
        self.buffer = []

        def apply(view) -> None:
            for db, record_key, value in batch:
                view.put(db, record_key, value)

        self.store.write(apply)
        self.written += len(batch)


def generate(store: Store, events: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    rules = ScoringRules()
    writer = Writer(store)
    counts = {"sessions": 0, "commits": 0, "communication": 0, "activities": 0, "retrospectives": 0}
    agents: dict[str, AgentState] = {}
    project_last: dict[str, dict] = {}
    start = END - timedelta(days=DAYS)
    event_seq = 0
    session_no = 0

    def remaining() -> int:
        return events - sum(counts.values())

    while remaining() > 0:
        session_no += 1
        project_path, stack, *_ = rng.choice(PROJECTS)
        agent = rng.choices(AGENTS, AGENT_WEIGHTS)[0]
        provider, model = rng.choices(MODELS, MODEL_WEIGHTS)[0]
        productivity, goodness, bug_rate = setup_quality(rng, agent, provider, model, stack)
        created = start + timedelta(seconds=rng.random() * (DAYS * 86400 - 4 * 86400))
        moment = created
        session_id = f"ses_{session_no:07d}{rng.getrandbits(24):06x}"
        setups = [f"{agent}|{provider}/{model}"]
        if rng.random() < 0.03:  # switched model midway: the session's final setup is the new one
            provider, model = rng.choices(MODELS, MODEL_WEIGHTS)[0]
            setups.append(f"{agent}|{provider}/{model}")
        state = agents.get(agent) or AgentState.new(agent, rules, iso(created))
        agents[agent] = state
        tool_calls = rng.randint(5, 80)
        failed = rng.randint(0, 5)
        commands = rng.randint(0, 3)
        n_commits = min(7, int(rng.expovariate(1 / productivity)))
        n_commits = min(n_commits, remaining() - 1)
        pushes = 1 if n_commits and rng.random() < 0.6 else 0
        xp = tool_calls * rules.tool_call_xp + commands * rules.command_xp
        last_commit = None
        for _ in range(max(0, n_commits)):
            if remaining() <= 1:
                break
            moment += timedelta(seconds=rng.randint(60, 1800))
            # A bijection of the commit number onto 28 bits: short hashes never collide.
            short = f"{(counts['commits'] * 2654435761 + 12345) & 0xFFFFFFF:07x}"
            full = short + "".join(f"{rng.getrandbits(32):08x}" for _ in range(4))[:33]
            commit_hash = full if rng.random() < 0.3 else short
            writer.put("commits", key(project_path, commit_hash), {
                "hash": commit_hash, "projectPath": project_path, "agentId": agent,
                "sessionID": session_id, "model": model, "provider": provider,
                "taskDescription": f"feat: change {session_no}-{counts['commits']}",
                "createdAt": iso(moment), "source": "bash"})
            counts["commits"] += 1
            state.total_commits += 1
            xp += rules.commit_xp
            last_commit = commit_hash
            for grader, probability in (("agent", 0.85), ("user", 0.5)):
                if remaining() <= 0 or rng.random() >= probability:
                    continue
                grade = draw_grade(rng, goodness + (0.1 if grader == "agent" else 0.0))
                event_seq += 1
                graded_at = iso(moment + timedelta(seconds=rng.randint(5, 3600)))
                writer.put("communication", key(project_path, commit_hash, grader, graded_at, f"bench:{event_seq}"), {
                    "agentId": agent, "projectPath": project_path, "commitHash": commit_hash,
                    "grade": grade, "gradeName": GRADE_NAMES[grade], "grader": grader,
                    "reason": "looks right" if grade > 1 else "needs work",
                    "sessionID": session_id, "createdAt": graded_at, "model": model, "provider": provider})
                counts["communication"] += 1
                state.communication_score = min(max(0.0, state.communication_score + grade),
                                                rules.communication_cap_per_skill_point * max(state.skill_points, 0))
            if remaining() > 0 and rng.random() < bug_rate:
                event_seq += 1
                at = iso(moment + timedelta(hours=rng.randint(1, 72)))
                writer.put("activities", key(agent, at, f"bench:{event_seq}"), {
                    "agentId": agent, "kind": "bug", "createdAt": at,
                    "description": "regression found after merge", "commitHash": commit_hash,
                    "projectPath": project_path, "sessionID": session_id})
                counts["activities"] += 1
                state.skill_points -= 1
                state.total_bugs += 1
                if state.skill_points <= 0 and remaining() > 0:
                    event_seq += 1
                    at = iso(moment + timedelta(hours=80))
                    writer.put("activities", key(agent, at, f"bench:{event_seq}"), {
                        "agentId": agent, "kind": "reinstate", "createdAt": at, "reason": "reviewed"})
                    counts["activities"] += 1
                    state.skill_points = 1.0
        # Other activities (test runs, lint, notes): fill the mix up to ~20%.
        for _ in range(rng.choice((0, 1, 1, 2, 3))):
            if remaining() <= 1:
                break
            event_seq += 1
            at = iso(moment + timedelta(seconds=rng.randint(1, 900)))
            writer.put("activities", key(agent, at, f"bench:{event_seq}"), {
                "agentId": agent, "kind": rng.choice(OTHER_ACTIVITIES), "createdAt": at,
                "description": "ran the test suite", "data": {"passed": rng.randint(10, 400), "failed": rng.randint(0, 3)},
                "sessionID": session_id})
            counts["activities"] += 1
        if remaining() > 1 and rng.random() < 0.05:
            event_seq += 1
            at = iso(moment + timedelta(minutes=30))
            writer.put("retrospectives", key(agent, at, f"bench:{event_seq}"), {
                "agentId": agent, "sessionID": session_id, "summary": "shipped the change",
                "wentWell": ["tests first"], "toImprove": ["smaller commits"], "lessons": [], "createdAt": at})
            counts["retrospectives"] += 1
        if pushes:
            xp += rules.push_xp
            state.total_pushes += 1
        state.experience_points += xp
        if state.skill_points >= 1:
            level_up(state, rules)
        updated = moment + timedelta(minutes=rng.randint(1, 30))
        session = {
            "sessionID": session_id, "projectPath": project_path, "agentId": agent, "model": model,
            "provider": provider, "setups": setups, "title": f"Task {session_no}",
            "createdAt": iso(created), "updatedAt": iso(updated), "lastIdleAt": iso(updated),
            "toolCalls": tool_calls, "failedToolCalls": failed, "commands": commands,
            "commits": n_commits, "pushes": pushes, "xpEarned": xp}
        if last_commit:
            session["lastCommit"] = last_commit
        if rng.random() < 0.7:
            session["deletedAt"] = iso(updated)
        writer.put("sessions", session_id, session)
        counts["sessions"] += 1
        project_last[project_path] = {"lastSeenAt": iso(updated), "lastCommit": last_commit,
                                      "lastCommitAt": iso(moment) if last_commit else None}
        state.updated_at = iso(updated)
    for agent, state in agents.items():
        writer.put("agents", agent, state.to_record())
    for path, stack, language, framework, manifest in PROJECTS:
        last = project_last.get(path, {})
        writer.put("projects", path, {
            "path": path, "stack": stack, "language": language, "framework": framework,
            "sources": [manifest], "fingerprint": f"bench-{stack}", "classifiedAt": iso(start),
            "firstSeenAt": iso(start), "lastSeenAt": last.get("lastSeenAt", iso(start)),
            "lastCommit": last.get("lastCommit"), "lastCommitAt": last.get("lastCommitAt")})
    writer.flush()
    return {**counts, "agents": len(agents), "projects": len(PROJECTS), "events": sum(counts.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="database file to create (must not exist)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-database-size", default="2GiB")
    args = parser.parse_args(argv)
    path = Path(args.database).resolve()
    if path.exists():
        print(f"{path} exists; give a new path (the generator never appends to a database).", file=sys.stderr)
        return 2
    from bridge.config import parse_database_size
    config = BridgeConfig(database_path=str(path), max_database_size=parse_database_size(args.max_database_size))
    started = time.perf_counter()
    with Store.open(config) as store:
        if not store.available:
            print(store.error, file=sys.stderr)
            return 3
        counts = generate(store, args.events, args.seed)
    elapsed = time.perf_counter() - started
    print(f"wrote {counts['events']:,} events to {path} in {elapsed:.1f} s "
          f"({path.stat().st_size / 2**20:.0f} MiB): " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
