"""Counted nouns in messages: "1 session", "3 sessions", never "session(s)"."""

from __future__ import annotations


def noun(count: int, singular: str, plural_form: str | None = None) -> str:
    """The noun that goes with ``count``: ``session`` for 1, ``sessions`` otherwise (0 too)."""
    return singular if count == 1 else (plural_form or singular + "s")


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 session``, ``2 sessions``, ``0 sessions``; ``plural_form`` for an irregular plural."""
    return f"{count} {noun(count, singular, plural_form)}"


# The scales, said where the numbers are: a score is out of 100, a grade is -1, 1, 2 or 5.
SCORE_SCALE = "/100"
GRADE_SCALE = "on -1..5"


def score_phrase(score: float) -> str:
    """``score 73.7/100``."""
    return f"score {score:.1f}{SCORE_SCALE}"


def grade_phrase(who: str, mean: float | None, count: int | None = None) -> str:
    """``mean user grade 4.00 on -1..5 (3 grades)``, or ``no user grades yet`` (never "-")."""
    if mean is None or count == 0:
        return f"no {who} grades yet"
    counted = f" ({plural(count, 'grade')})" if count is not None else ""
    return f"mean {who} grade {mean:.2f} {GRADE_SCALE}{counted}"
