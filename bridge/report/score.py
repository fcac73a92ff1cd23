"""The score of a setup: weights, the grade prior, the formula and its help text, one function.

Aggregates arrive as accumulators, one list of numbers per setup (slots below), so the fast
scan, the forked helper and the timeline share one scoring rule.
"""

from __future__ import annotations

DEFAULT_MIN_SESSIONS = 3



# Grades are -1 (bad), 1 (neutral), 2 (good), 5 (excellence): mapped onto 0..1 by (g + 1) / 6.
GRADE_MIN, GRADE_MAX, NEUTRAL_GRADE = -1, 5, 1


GRADE_PRIOR = 2  # virtual neutral grades added to each mean (small samples stay near neutral)


WEIGHTS = {"userGrade": 0.40, "agentGrade": 0.15, "productivity": 0.25, "reliability": 0.20}


FORMULA = ("score = 100 x (0.40 x userGrade + 0.15 x agentGrade + 0.25 x productivity "
           "+ 0.20 x reliability)")


TIE_BREAK = ["score (higher first)", "sessions (more first)", "commits (more first)",
             "lastUsed (more recent first)", "agent, model, stack (alphabetical)"]


SCORE_HELP = f"""\
A setup is (OpenCode agent, provider/model, project stack). Each setup is scored 0-100:

  {FORMULA}

  userGrade    = (m + 1) / 6 where m is the mean user grade (-1, 1, 2, 5) smoothed with
                 {GRADE_PRIOR} virtual neutral grades: m = (sum + {GRADE_PRIOR}) / (count + {GRADE_PRIOR})
  agentGrade   = the same for the agents' self-grades
  productivity = c / (c + 1), c = commits per session (1 commit/session = 0.5)
  reliability  = 1 - min(1, bugs per commit)

Setups with fewer sessions than --min-sessions (default {DEFAULT_MIN_SESSIONS}), or with an unknown
agent/model, are shown but not ranked. Ranks are per stack; ties are broken by
{", then ".join(TIE_BREAK[1:])}. One recommendation per stack: its rank-1 setup.
"""



# Accumulator slots (one list of numbers per setup, or per (setup, time bucket)).
SESSIONS, XP, COMMITS, AGENT_SUM, AGENT_N, USER_SUM, USER_N, EXCELLENT, BAD, BUGS = range(10)
# What the setup's model calls cost (collect.add_usage): sums over the usage recorded for its
# sessions, and how many sessions and commits those were (the denominators of $/session, $/commit).
(COST, TOKENS_INPUT, TOKENS_OUTPUT, TOKENS_REASONING, TOKENS_CACHE_READ, TOKENS_CACHE_WRITE, DURATION, MESSAGES,
 USAGE_SESSIONS, USAGE_COMMITS) = range(10, 20)
# The usage totals' fields (tracking.usage_totals.USAGE_FIELDS) in their slots.
USAGE_SLOTS = {"messages": MESSAGES, "cost": COST, "input": TOKENS_INPUT, "output": TOKENS_OUTPUT,
               "reasoning": TOKENS_REASONING, "cacheRead": TOKENS_CACHE_READ, "cacheWrite": TOKENS_CACHE_WRITE,
               "durationMs": DURATION}


SLOTS = 20



# -- scoring ---------------------------------------------------------------------------------------

def _grade_part(total: float, count: int) -> float:
    smoothed = (total + GRADE_PRIOR * NEUTRAL_GRADE) / (count + GRADE_PRIOR)
    return (smoothed - GRADE_MIN) / (GRADE_MAX - GRADE_MIN)



def score_parts(acc: list[float]) -> tuple[float, dict[str, float]]:
    """(score 0-100, its four parts 0-1) of one accumulator (see SCORE_HELP)."""
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
    }
    score = 100.0 * sum(WEIGHTS[name] * value for name, value in parts.items())
    return score, parts
