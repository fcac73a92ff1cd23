"""Each setup's sufficient statistics per person, in SQL over the checked datasets.

The SQL only deduplicates (one row per stable id: the newest row of a session, the first grade of
a commit by each grader) and sums: every row already names the setup it counts for (facts.py
applies the report's attribution at export time). The sums fill the report's accumulator slots
(bridge.report.score), and the Python score formula scores them: the rule lives in one place.
docs/team.md has the same statements for Spark SQL.
"""

from __future__ import annotations

from typing import Any

from ..report import score as slots
from .engine import query

PersonSetup = tuple[str, str, str, str]  # (person, agent, model, stack)

# table -> (its stable id's columns, which copy of a row exported more than once wins)
ROW_IDS = {
    "sessions": (("session_id",), "updated_at DESC NULLS LAST, person, database_id"),
    "commits": (("project_path", "hash"), "created_at NULLS LAST, person, database_id"),
    "grades_by_id": (("grade_id",), "person, database_id"),
    # one grade per commit and grader (user, agent), the first given; other graders' (migrated) by their id
    "graded": (("project_path", "commit_hash", "grader"), "created_at NULLS LAST, grade_id"),
    "bugs": (("bug_id",), "person, database_id"),
    "usage": (("session_id", "setup"), "session_updated_at DESC NULLS LAST, person, database_id"),
}
SOURCES = {"sessions": "raw_sessions", "commits": "raw_commits", "bugs": "raw_bugs", "usage": "raw_usage",
           "grades_by_id": "raw_grades",
           "graded": "(SELECT * FROM grades_by_id WHERE grader IN ('user', 'agent'))"}
GRADES_VIEW = """CREATE OR REPLACE TEMP VIEW grades AS SELECT * FROM graded
    UNION ALL BY NAME SELECT * FROM grades_by_id WHERE grader IS NULL OR grader NOT IN ('user', 'agent')"""


def deduplicate(connection: Any, table: str) -> None:
    """The view ``table``: one row per stable id. Only the ids that occur more than once are sorted
    (a hash aggregate finds them), the rest passes through: copies are rare, rows are millions."""
    ids, order = ROW_IDS[table]
    source, columns = SOURCES[table], ", ".join(ids)
    query(connection, f"CREATE OR REPLACE TEMP TABLE copies_{table} AS SELECT {columns} FROM {source} "
                      f"GROUP BY ALL HAVING count(*) > 1")
    if not query(connection, f"SELECT count(*) FROM copies_{table}")[0][0]:
        query(connection, f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM {source}")
        return
    query(connection, f"""CREATE OR REPLACE TEMP VIEW {table} AS
        SELECT * FROM {source} ANTI JOIN copies_{table} USING ({columns})
        UNION ALL BY NAME
        SELECT * FROM (SELECT * FROM {source} SEMI JOIN copies_{table} USING ({columns}))
        QUALIFY row_number() OVER (PARTITION BY {columns} ORDER BY {order}) = 1""")


SESSIONS_SQL = """
SELECT person, s.agent, s.model, s.stack,
       count(*) FILTER (WHERE NOT is_subagent) AS sessions,
       sum(xp / n) AS xp,
       sum((tool_calls + failed_tool_calls) / n) AS tool_calls,
       sum(failed_tool_calls / n) AS failed_tool_calls,
       sum(fixed_up_commits / n) AS fixed_up,
       count(*) FILTER (WHERE NOT is_subagent AND ended_at IS NOT NULL) AS ended,
       count(*) FILTER (WHERE abandoned) AS abandoned,
       max(updated_at) AS last_used,
       count(DISTINCT project_path) AS projects
FROM (SELECT *, len(credited_setups) AS n, unnest(credited_setups) AS s
      FROM sessions WHERE len(credited_setups) > 0)
GROUP BY ALL
"""

CREDITED = "person, credited_agent, credited_model, credited_stack"

COMMITS_SQL = f"""
SELECT {CREDITED}, count(*) FROM commits WHERE credited_agent IS NOT NULL GROUP BY ALL
"""

GRADES_SQL = f"""
SELECT {CREDITED},
       coalesce(sum(grade) FILTER (WHERE grader = 'user'), 0), count(*) FILTER (WHERE grader = 'user'),
       coalesce(sum(grade) FILTER (WHERE grader = 'agent'), 0), count(*) FILTER (WHERE grader = 'agent'),
       count(*) FILTER (WHERE grade = 5), count(*) FILTER (WHERE grade = -1),
       {", ".join(f"count(*) FILTER (WHERE grader = '{who}' AND grade = {value})"
                  for who in ("user", "agent") for value in slots.GRADE_VALUES)}
FROM grades WHERE credited_agent IS NOT NULL AND grade IN (-1, 1, 2, 5) GROUP BY ALL
"""

BUGS_SQL = f"""
SELECT {CREDITED}, count(*), count(*) FILTER (WHERE reverted_by IS NOT NULL AND reverted_by <> '')
FROM bugs WHERE attributed AND credited_agent IS NOT NULL GROUP BY ALL
"""

USAGE_SQL = f"""
SELECT {CREDITED}, sum(messages), sum(cost), sum(tokens_input), sum(tokens_output), sum(tokens_reasoning),
       sum(tokens_cache_read), sum(tokens_cache_write), sum(duration_ms), count(DISTINCT root_session_id),
       sum(commits_share)
FROM usage WHERE credited_agent IS NOT NULL GROUP BY ALL
"""

UNATTRIBUTED_SQL = "SELECT count(*) FROM bugs WHERE NOT attributed"


class Statistics:
    """Accumulators (score.SLOTS) per (person, setup), and what else the rows show."""

    def __init__(self) -> None:
        self.acc: dict[PersonSetup, list[float]] = {}
        self.last_used: dict[PersonSetup, str] = {}
        self.projects: dict[PersonSetup, int] = {}
        self.unattributed_bugs = 0

    def slot(self, key: tuple[Any, ...]) -> list[float]:
        person_setup: PersonSetup = (str(key[0]), str(key[1]), str(key[2]), str(key[3]))
        found = self.acc.get(person_setup)
        if found is None:
            found = self.acc[person_setup] = [0.0] * slots.SLOTS
        return found


def _add(acc: list[float], indexes: list[int], values: tuple[Any, ...]) -> None:
    for index, value in zip(indexes, values):
        acc[index] += float(value or 0)


def collect(connection: Any) -> Statistics:
    for table in ROW_IDS:
        deduplicate(connection, table)
    query(connection, GRADES_VIEW)
    stats = Statistics()
    for row in query(connection, SESSIONS_SQL):
        key, values = row[:4], row[4:]
        acc = stats.slot(key)
        _add(acc, [slots.SESSIONS, slots.XP, slots.TOOL_CALLS, slots.FAILED_CALLS, slots.FIXED_UP, slots.ENDED,
                   slots.ABANDONED], values[:7])
        person_setup = (str(key[0]), str(key[1]), str(key[2]), str(key[3]))
        if values[7] is not None:
            stats.last_used[person_setup] = _iso(values[7])
        stats.projects[person_setup] = int(values[8])
    for row in query(connection, COMMITS_SQL):
        _add(stats.slot(row[:4]), [slots.COMMITS], row[4:])
    grade_slots = [slots.USER_SUM, slots.USER_N, slots.AGENT_SUM, slots.AGENT_N, slots.EXCELLENT, slots.BAD,
                   *slots.USER_GRADE_COUNTS.values(), *slots.AGENT_GRADE_COUNTS.values()]
    for row in query(connection, GRADES_SQL):
        _add(stats.slot(row[:4]), grade_slots, row[4:])
    for row in query(connection, BUGS_SQL):
        _add(stats.slot(row[:4]), [slots.BUGS, slots.REVERTS], row[4:])
    usage_slots = [slots.MESSAGES, slots.COST, slots.TOKENS_INPUT, slots.TOKENS_OUTPUT, slots.TOKENS_REASONING,
                   slots.TOKENS_CACHE_READ, slots.TOKENS_CACHE_WRITE, slots.DURATION, slots.USAGE_SESSIONS,
                   slots.USAGE_COMMITS]
    for row in query(connection, USAGE_SQL):
        _add(stats.slot(row[:4]), usage_slots, row[4:])
    stats.unattributed_bugs = int(query(connection, UNATTRIBUTED_SQL)[0][0])
    return stats


def _iso(moment: Any) -> str:
    from ..timestamps import iso_utc

    return iso_utc(moment) if hasattr(moment, "astimezone") else str(moment)
