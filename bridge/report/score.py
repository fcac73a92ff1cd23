"""The score of a setup: weights, the grade prior, the formula and its help text, one function.

Aggregates arrive as accumulators, one list of numbers per setup (slots below), so the fast
scan, the forked helper and the timeline share one scoring rule.
"""

from __future__ import annotations

import textwrap

from ..tracking.git_commands import FIXUP_WINDOW

DEFAULT_MIN_SESSIONS = 3



# Grades are -1 (bad), 1 (neutral), 2 (good), 5 (excellence): mapped onto 0..1 by (g + 1) / 6.
GRADE_MIN, GRADE_MAX, NEUTRAL_GRADE = -1, 5, 1


GRADE_PRIOR = 2  # virtual neutral grades added to each mean (small samples stay near neutral)


WEIGHTS = {"userGrade": 0.35, "agentGrade": 0.10, "productivity": 0.20, "reliability": 0.15,
           "completion": 0.10, "toolSuccess": 0.05, "cleanCommits": 0.05}


# Written from WEIGHTS, so the help text and the JSON say exactly what score_parts computes.
FORMULA = "score = 100 x (" + " + ".join(f"{weight:.2f} x {name}" for name, weight in WEIGHTS.items()) + ")"


TIE_BREAK = ["score (higher first)", "sessions (more first)", "commits (more first)",
             "lastUsed (more recent first)", "agent, model, stack (alphabetical)"]


SCORE_HELP = f"""\
A setup is (OpenCode agent, provider/model, project stack). A subagent's session (OpenCode's task
tool) counts for the setup of the session that started it, never on its own. Each setup is scored
0-100:

{textwrap.fill(FORMULA, 100, initial_indent="  ", subsequent_indent=" " * 17)}

  userGrade    = (m + 1) / 6 where m is the mean user grade (-1, 1, 2, 5) smoothed with
                 {GRADE_PRIOR} virtual neutral grades: m = (sum + {GRADE_PRIOR}) / (count + {GRADE_PRIOR})
  agentGrade   = the same for the agents' self-grades
  productivity = c / (c + 1), c = commits per session (1 commit/session = 0.5)
  reliability  = 1 - min(1, bugs per commit); a commit that was later reverted counts as a bug
                 (no commits: 1 without bugs, else 0)
  completion   = 1 - abandoned / ended sessions; a session is abandoned when it ended (deleted,
                 or open when OpenCode closed) without a commit of its own or of its subagents
                 (no ended sessions: 1)
  toolSuccess  = 1 - failed tool calls / tool calls (no tool calls: 1)
  cleanCommits = 1 - commits fixed up / commits, where a commit is fixed up when its session
                 amended it (`git commit --amend`) or made a `fixup!`/`squash!` commit of it within
                 {FIXUP_WINDOW.seconds // 60} minutes (no commits: 1)

Setups with fewer sessions than --min-sessions (default {DEFAULT_MIN_SESSIONS}), or with an unknown
agent/model, are shown but not ranked. Ranks are per stack; ties are broken by
{", then ".join(TIE_BREAK[1:])}. One recommendation per stack: its rank-1 setup.
"""



# Accumulator slots (one list of numbers per setup, or per (setup, time bucket)). TOOL_CALLS counts
# every tool call, FAILED_CALLS the failed ones; ENDED the sessions that ended, ABANDONED those
# of them without a commit; FIXED_UP commits fixed up soon after; REVERTS the bugs that are reverts.
(SESSIONS, XP, COMMITS, AGENT_SUM, AGENT_N, USER_SUM, USER_N, EXCELLENT, BAD, BUGS,
 TOOL_CALLS, FAILED_CALLS, ENDED, ABANDONED, FIXED_UP, REVERTS) = range(16)
# What the setup's model calls cost (usage.add_usage): sums over the usage recorded for its
# sessions, and how many sessions and commits those were (the denominators of $/session, $/commit).
(COST, TOKENS_INPUT, TOKENS_OUTPUT, TOKENS_REASONING, TOKENS_CACHE_READ, TOKENS_CACHE_WRITE, DURATION, MESSAGES,
 USAGE_SESSIONS, USAGE_COMMITS) = range(16, 26)
# The usage totals' fields (tracking.usage_totals.USAGE_FIELDS) in their slots.
USAGE_SLOTS = {"messages": MESSAGES, "cost": COST, "input": TOKENS_INPUT, "output": TOKENS_OUTPUT,
               "reasoning": TOKENS_REASONING, "cacheRead": TOKENS_CACHE_READ, "cacheWrite": TOKENS_CACHE_WRITE,
               "durationMs": DURATION}


# How many user and agent grades took each value (-1, 1, 2, 5): the grade distributions the
# posterior (probability of best) needs; a mean and a count alone do not determine them.
GRADE_VALUES = (-1, 1, 2, 5)
USER_GRADE_COUNTS = dict(zip(GRADE_VALUES, range(26, 30)))
AGENT_GRADE_COUNTS = dict(zip(GRADE_VALUES, range(30, 34)))


SLOTS = 34

# Every slot by a stable name: how bridge.summaries stores accumulators, so a slot added later is a
# new name (absent from older summaries until they are rebuilt), never a shifted position.
SLOT_NAMES: dict[str, int] = {
    "sessions": SESSIONS, "xp": XP, "commits": COMMITS, "agentGradeSum": AGENT_SUM, "agentGrades": AGENT_N,
    "userGradeSum": USER_SUM, "userGrades": USER_N, "excellent": EXCELLENT, "bad": BAD, "bugs": BUGS,
    "toolCalls": TOOL_CALLS, "failedToolCalls": FAILED_CALLS, "ended": ENDED, "abandoned": ABANDONED,
    "fixedUp": FIXED_UP, "reverts": REVERTS, "cost": COST, "tokensInput": TOKENS_INPUT,
    "tokensOutput": TOKENS_OUTPUT, "tokensReasoning": TOKENS_REASONING, "tokensCacheRead": TOKENS_CACHE_READ,
    "tokensCacheWrite": TOKENS_CACHE_WRITE, "durationMs": DURATION, "messages": MESSAGES,
    "usageSessions": USAGE_SESSIONS, "usageCommits": USAGE_COMMITS,
    **{f"userGrade{value}": slot for value, slot in USER_GRADE_COUNTS.items()},
    **{f"agentGrade{value}": slot for value, slot in AGENT_GRADE_COUNTS.items()},
}



# -- scoring ---------------------------------------------------------------------------------------

def _grade_part(total: float, count: int) -> float:
    smoothed = (total + GRADE_PRIOR * NEUTRAL_GRADE) / (count + GRADE_PRIOR)
    return (smoothed - GRADE_MIN) / (GRADE_MAX - GRADE_MIN)



def _clean_share(bad: float, total: float) -> float:
    """1 - bad / total, within 0..1; nothing to judge (total 0) is 1."""
    return 1.0 - min(1.0, bad / total) if total else 1.0


def score_parts(acc: list[float]) -> tuple[float, dict[str, float]]:
    """(score 0-100, its seven parts 0-1) of one accumulator (see SCORE_HELP)."""
    sessions, commits, bugs = acc[SESSIONS], acc[COMMITS], acc[BUGS]
    per_session = commits / sessions if sessions else 0.0
    if commits:
        reliability = 1.0 - min(1.0, bugs / commits)
    else:
        reliability = 0.0 if bugs else 1.0
    parts = {
        "userGrade": _grade_part(acc[USER_SUM], int(acc[USER_N])),
        "agentGrade": _grade_part(acc[AGENT_SUM], int(acc[AGENT_N])),
        "productivity": per_session / (per_session + 1.0),
        "reliability": reliability,
        "completion": _clean_share(acc[ABANDONED], acc[ENDED]),
        "toolSuccess": _clean_share(acc[FAILED_CALLS], acc[TOOL_CALLS]),
        "cleanCommits": _clean_share(acc[FIXED_UP], commits),
    }
    score = 100.0 * sum(WEIGHTS[name] * value for name, value in parts.items())
    return score, parts
