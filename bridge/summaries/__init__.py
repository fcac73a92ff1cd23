"""summaries: the report's sufficient statistics, kept in the same write transaction as the events.

Owns the ``summaries`` sub-database (protocol/storage.md): per (setup identity, day) rows and
all-time rows of the report's accumulator slots by name (report.score.SLOT_NAMES), the counts it
shows, the latest use and the subagents' work; the tuple of setups each session counted for; the
bugs no setup can be named for; and, per session tree with subagents, its members and what its
subagents' records contribute to the root session's setup. A *setup identity* is what the report
resolves into a setup: (agent, provider/model, project path); the stack and the filters are
applied when reading (the stack of a path can change, the filters are the reader's).

Rules: a session's contribution is computed by the report's own collectors (report.collect,
report.bugs, report.usage: the attribution rules live there, once) over just that session tree's
records (identity.SubsetView). store.Store.write runs ``maintain.refresh`` before every commit
that changed a session, commit, grade or bug (register_write_hook), so the summaries and the
events never disagree; a database without them gets them built in the first such transaction
(``maintain.rebuild``), and a write by a process that cannot maintain them removes the marker
(readers then scan). ``read`` turns them into the report's Totals; ``check`` is
`agent-tracker doctor --summaries`.

May import: store, report (attribution, collect, bugs, score, model, filters, decode), tracking's
pure rules (setups) and its fault injection (faults). Never imports rpc, cli, migration or opencode. Modules: identity (the
contributions), rows (their stored form and the roll-ups), maintain (the write hook, rebuild),
read (for the report), check (recomputed == stored).
"""

from __future__ import annotations

from ..store import WriteView, register_write_hook


def _refresh(view: WriteView) -> None:
    from .maintain import refresh  # the report's collectors: imported on the first summarised write

    refresh(view)


def enable() -> None:
    """Maintain the summaries in every write transaction of this process (idempotent)."""
    register_write_hook(_refresh)
