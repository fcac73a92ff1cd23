"""`agent-tracker configs [AGENT]`: an agent's configuration versions, newest first, each with its
sessions, score and what changed against the version before it (tracking.configs)."""

from __future__ import annotations

from typing import Any

import attrs

from ..config import ScoringRules
from ..store import Store
from ..tracking.configs import UNKNOWN_VERSION, describe_change, label, newest_first, stored_versions
from .build import build_report
from .model import SetupRow


@attrs.define
class Version:
    agent: str
    version: str
    record: dict[str, Any] | None  # the configs record; None for "unknown" (before versions)
    change: str                    # against the version before it (the next older one)
    rows: list[SetupRow]           # its setups (one per model), across all projects

    @property
    def sessions(self) -> int:
        return sum(row.sessions for row in self.rows)

    @property
    def best(self) -> SetupRow | None:
        """Its best scored setup: ranked ones first, then by score."""
        return max(self.rows, key=lambda row: (row.ranked, row.score), default=None)

    def to_wire(self) -> dict[str, Any]:
        record = self.record or {}
        best = self.best
        return {
            "agent": self.agent, "version": self.version, "label": label(self.agent, self.version),
            "firstSeenAt": record.get("firstSeenAt"), "lastSeenAt": record.get("lastSeenAt"),
            "projects": record.get("projects", []), "definition": record.get("definition"),
            "change": self.change, "sessions": self.sessions,
            "score": best.score if best else None, "ranked": bool(best and best.ranked),
            # its best setup's chance of being the best of all the setups compared (posterior.py);
            # pBest: the name this field had before the posterior existed
            "probabilityBest": best.probability_best if best else None,
            "pBest": best.probability_best if best else None,
            "setups": [{"model": row.model, "sessions": row.sessions, "score": row.score, "ranked": row.ranked,
                        "commits": row.commits, "meanUserGrade": row.mean_user_grade} for row in self.rows],
        }


def agent_versions(store: Store, agent: str | None = None, *, rules: ScoringRules | None = None,
                   min_sessions: int | None = None) -> dict[str, list[Version]]:
    """agent → its versions, newest first (by when each first appeared); sessions from before any
    version was recorded are the version ``unknown``, listed last."""
    with store.read() as view:
        stored = stored_versions(view, agent)
    report = build_report(store, agent=agent, group="all", rules=rules, min_sessions=min_sessions)
    rows: dict[tuple[str, str], list[SetupRow]] = {}
    for row in report.setups:
        rows.setdefault((row.agent, row.config_version or UNKNOWN_VERSION), []).append(row)
    by_agent: dict[str, list[dict[str, Any]]] = {}
    for record in stored.values():
        by_agent.setdefault(str(record.get("agentId")), []).append(record)
    found: dict[str, list[Version]] = {}
    for name in sorted(set(by_agent) | {row_agent for row_agent, _ in rows}):
        records = newest_first(by_agent.get(name, []))
        versions: list[Version] = []
        for index, record in enumerate(records):
            older = records[index + 1]["definition"] if index + 1 < len(records) else None
            versions.append(Version(name, record["version"], record, describe_change(older, record["definition"]),
                                    rows.get((name, record["version"]), [])))
        if (name, UNKNOWN_VERSION) in rows:
            versions.append(Version(name, UNKNOWN_VERSION, None,
                                    "sessions before the plugin recorded configurations (imported or migrated)",
                                    rows[(name, UNKNOWN_VERSION)]))
        found[name] = versions
    return found
