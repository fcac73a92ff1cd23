"""Counted nouns in messages: "1 session", "3 sessions", never "session(s)"."""

from __future__ import annotations


def noun(count: int, singular: str, plural_form: str | None = None) -> str:
    """The noun that goes with ``count``: ``session`` for 1, ``sessions`` otherwise (0 too)."""
    return singular if count == 1 else (plural_form or singular + "s")


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 session``, ``2 sessions``, ``0 sessions``; ``plural_form`` for an irregular plural."""
    return f"{count} {noun(count, singular, plural_form)}"
