"""The Parquet datasets' schema, version 1: every table's columns, their types and meanings.

One source: the writer (parquet_out) builds its Arrow schemas from TABLES, the readers (datasets,
importer) check files against it, and docs/schema.md is written from it (``schema_markdown``;
tests/test_team.py holds the file to it). A change that is not additive raises SCHEMA_VERSION.

Every file carries ``agent_tracker.schema_version`` and ``agent_tracker.table`` in its key/value
metadata. Rows name their origin: ``database_id`` (the exporting database's stable id, meta
``databaseId``), ``origin_database_id`` (where the row was first recorded: differs after
``import-export``) and ``person``. Stable ids (a session's id, a commit's project and hash, a
grade's and a bug's key) let exports of several people and runs sit side by side: readers keep one
row per id (the latest ``updated_at`` for sessions).
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 1
VERSION_KEY = "agent_tracker.schema_version"
TABLE_KEY = "agent_tracker.table"
PERSON_KEY = "agent_tracker.person"
DATABASE_KEY = "agent_tracker.database_id"
EXPORTED_KEY = "agent_tracker.exported_at"
# Any text cell longer than this (in bytes) makes a file unreadable to team-report and import-export:
# real ids, names and reasons are far shorter, and a reader must not be made to hold gigabytes.
MAX_TEXT_BYTES = 1 << 16

Column = tuple[str, str, str]  # name, type, meaning

_ORIGIN: list[Column] = [
    ("database_id", "string", "the exporting database's stable id (meta `databaseId`, 32 hex digits)"),
    ("origin_database_id", "string", "the database that first recorded the row (another one's after import-export)"),
    ("person", "string", "who the row belongs to: `--person`, else `person-` + 8 hex digits of the origin database id"),
]
_CREDITED: list[Column] = [
    ("credited_agent", "string", "the agent of the setup the report credits the row to (a subagent's: its root session's)"),
    ("credited_model", "string", "that setup's provider/model (`unknown` when not recorded)"),
    ("credited_stack", "string", "that setup's project stack (`python/fastapi`, `unknown`)"),
]

TABLES: dict[str, list[Column]] = {
    "sessions": _ORIGIN + [
        ("session_id", "string", "OpenCode's session id: the stable id"),
        ("parent_session_id", "string", "the session whose task tool started it (a subagent's session)"),
        ("root_session_id", "string", "the top of its chain of parents (itself for a root session)"),
        ("is_subagent", "bool", "counts for its root session's setup, never as a session of its own"),
        ("project_path", "string", "the project folder on the origin machine"),
        ("stack", "string", "the project's stack"),
        ("agent", "string", "the OpenCode agent the session started with"),
        ("provider", "string", "its provider"),
        ("model", "string", "its model"),
        ("title", "string", "the session's title (derived from the first prompt): only with --include-prompts"),
        ("created_at", "timestamp", "when it started (UTC); its month is the partition"),
        ("updated_at", "timestamp", "its last event: the newest row of a session wins"),
        ("ended_at", "timestamp", "when it ended (deleted, or open when OpenCode closed)"),
        ("tool_calls", "int64", "successful tool calls"),
        ("failed_tool_calls", "int64", "failed tool calls"),
        ("commands", "int64", "commands run"),
        ("commits", "int64", "commits made in it"),
        ("pushes", "int64", "pushes counted in it"),
        ("xp", "float64", "XP earned in it"),
        ("fixed_up_commits", "int64", "its commits a later one of it fixed up"),
        ("abandoned", "bool", "a root session that ended without a commit of its own or of its subagents"),
        ("credited_setups", "list<setup>",
         "the setups it counts for: list of struct(agent, model, stack); several when it switched (its XP and "
         "tool calls are split evenly, it is one session of each)"),
        ("cost", "float64", "what its model calls cost, USD (null: no usage recorded)"),
        ("tokens", "int64", "their tokens, all kinds"),
        ("duration_ms", "float64", "the model calls' working time"),
        ("messages", "int64", "assistant messages with usage"),
    ],
    "commits": _ORIGIN + _CREDITED + [
        ("project_path", "string", "the project folder: with `hash`, the stable id"),
        ("hash", "string", "the commit hash (the longest known: short from `git commit` output, or full)"),
        ("session_id", "string", "the session that made it"),
        ("parent_session_id", "string", "made in a subagent's session: its parent session"),
        ("agent", "string", "the agent that made it"),
        ("provider", "string", "its provider"),
        ("model", "string", "its model"),
        ("task_description", "string", "what it was for: only with --include-prompts"),
        ("created_at", "timestamp", "when it was recorded; its month is the partition"),
        ("source", "string", "bash, commit.completed or migration"),
        ("fixup_of", "string", "the commit it fixes up"),
        ("fixed_up_by", "string", "a commit that fixed it up soon after"),
        ("reverted_by", "string", "a later commit that reverted it"),
    ],
    "grades": _ORIGIN + _CREDITED + [
        ("grade_id", "string", "the grade's stable id (its key in the database)"),
        ("project_path", "string", "the graded commit's project"),
        ("commit_hash", "string", "the graded commit; one grade per commit and grader"),
        ("grader", "string", "user, agent or unknown (migrated)"),
        ("grade", "int64", "-1 bad, 1 neutral, 2 good, 5 excellence"),
        ("reason", "string", "the grader's reason"),
        ("session_id", "string", "the session it was given in"),
        ("agent", "string", "the agent that made the commit"),
        ("provider", "string", "the graded commit's provider"),
        ("model", "string", "the graded commit's model"),
        ("created_at", "timestamp", "when it was given; its month is the partition"),
    ],
    "bugs": _ORIGIN + _CREDITED + [
        ("bug_id", "string", "the bug's stable id (its key in the database)"),
        ("agent", "string", "the agent it was reported for"),
        ("session_id", "string", "the session it was reported in"),
        ("project_path", "string", "the project"),
        ("commit_hash", "string", "the commit with the bug"),
        ("description", "string", "what is wrong"),
        ("source", "string", "revert: the bug is that its commit was reverted"),
        ("reverted_by", "string", "the reverting commit"),
        ("attributed", "bool", "whether it names a commit or session the report can credit (credited_* null if not)"),
        ("created_at", "timestamp", "when it was reported; its month is the partition"),
    ],
    "usage": _ORIGIN + _CREDITED + [
        ("session_id", "string", "the session: with `setup`, the stable id"),
        ("root_session_id", "string", "its root session (a subagent's usage counts there)"),
        ("setup", "string", "agent|provider/model of the messages summed in this row"),
        ("messages", "int64", "assistant messages"),
        ("cost", "float64", "USD"),
        ("tokens_input", "int64", "input tokens"),
        ("tokens_output", "int64", "output tokens"),
        ("tokens_reasoning", "int64", "reasoning tokens"),
        ("tokens_cache_read", "int64", "cache read tokens"),
        ("tokens_cache_write", "int64", "cache write tokens"),
        ("duration_ms", "float64", "the calls' working time (0 in a subagent's row: its parent's task call holds it)"),
        ("commits_share", "float64", "the session's commits counted with this row (split over its setups)"),
        ("session_updated_at", "timestamp", "the session's last event: the newest row wins"),
        ("created_at", "timestamp", "the session's start; its month is the partition"),
    ],
    "configs": _ORIGIN + [
        ("config_id", "string", "the configuration version's stable id (its key in the database)"),
        ("created_at", "timestamp", "when it was first seen; its month is the partition"),
        ("data", "string", "the stored record as JSON; prompt text (fields named like prompt, system, "
                           "instructions) removed unless --include-prompts"),
    ],
}

# What identifies a row of each table across exports (readers keep one row per key).
ROW_IDS: dict[str, tuple[str, ...]] = {
    "sessions": ("session_id",), "commits": ("project_path", "hash"), "grades": ("grade_id",),
    "bugs": ("bug_id",), "usage": ("session_id", "setup"), "configs": ("config_id",),
}


def columns(table: str) -> list[str]:
    return [name for name, _, _ in TABLES[table]]


def arrow_schema(table: str, metadata: dict[str, str]) -> Any:
    from .extra import require

    pa = require("pyarrow")
    setup = pa.struct([("agent", pa.string()), ("model", pa.string()), ("stack", pa.string())])
    types = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(),
             "timestamp": pa.timestamp("ms", tz="UTC"), "list<setup>": pa.list_(setup)}
    return pa.schema([(name, types[kind]) for name, kind, _ in TABLES[table]], metadata=metadata)


def schema_markdown() -> str:
    """docs/schema.md, written from TABLES."""
    lines = [
        f"# Team export schema (version {SCHEMA_VERSION})", "",
        "`agent-tracker export --format parquet DIR` writes one dataset per table, "
        "`DIR/<table>/month=YYYY-MM/<database id>[-since-<time>].parquet` (Hive partitioning by the month of "
        "`created_at`). Every file's key/value metadata holds "
        f"`{VERSION_KEY}` (`{SCHEMA_VERSION}`), `{TABLE_KEY}`, `{PERSON_KEY}`, `{DATABASE_KEY}` and "
        f"`{EXPORTED_KEY}`. Readers (`team-report`, `import-export`) refuse a file with another version, a "
        f"missing column or a text cell over {MAX_TEXT_BYTES} bytes. Timestamps are UTC, milliseconds.", "",
        "Stable ids, so that several people's and several runs' files can sit in one folder: a reader keeps "
        "one row per id (" + ", ".join(f"{table}: {' + '.join(ids)}" for table, ids in ROW_IDS.items())
        + "); of a session exported twice, the row with the latest `updated_at`.", "",
        "Tool-call totals are the sessions' `tool_calls` and `failed_tool_calls` (successful and failed calls "
        "per session), not one row per call.", "",
    ]
    for table, cols in TABLES.items():
        lines += [f"## {table}", "", "| column | type | meaning |", "|---|---|---|"]
        lines += [f"| `{name}` | {kind} | {meaning} |" for name, kind, meaning in cols]
        lines.append("")
    return "\n".join(lines)
