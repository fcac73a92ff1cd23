"""What a migration did, per source and in all: counts, errors, skipped agents, its wire form."""

from __future__ import annotations

from typing import Any

import attrs

from ..wording import plural

# Imported record types, in the order they are imported (agents first: commits and grades
# take their model from the agent record).
TABLES = ("agents", "projects", "commits", "communication", "retrospectives", "activities", "migrations")



@attrs.define
class SourceResult:
    path: str
    layout: str = "unknown"
    fingerprint: str = ""
    imported: dict[str, int] = attrs.Factory(lambda: {t: 0 for t in TABLES})
    already_present: int = 0
    skipped: int = 0
    skipped_agents: list[dict[str, Any]] = attrs.Factory(list)
    errors: list[str] = attrs.Factory(list)
    backup_of: str | None = None
    up_to_date: bool = False

    def to_wire(self) -> dict[str, Any]:
        wire = {"path": self.path, "layout": self.layout, "imported": self.imported,
                "alreadyPresent": self.already_present, "skipped": self.skipped,
                "skippedAgents": self.skipped_agents,
                "errors": self.errors[:50], "errorCount": len(self.errors), "upToDate": self.up_to_date}
        if self.backup_of:
            wire["movedAsideFrom"] = self.backup_of
        return wire



@attrs.define
class MigrationReport:
    sources: list[SourceResult] = attrs.Factory(list)
    dry_run: bool = False

    @property
    def imported(self) -> int:
        return sum(sum(s.imported.values()) for s in self.sources)

    @property
    def errors(self) -> list[str]:
        return [f"{s.path}: {e}" for s in self.sources for e in s.errors]

    @property
    def skipped_agents(self) -> int:
        return sum(len(s.skipped_agents) for s in self.sources)

    def message(self) -> str:
        if not self.sources:
            return "No databases from the older TypeScript plugin found."
        verb = "Would import" if self.dry_run else "Imported"
        parts = [f"{verb} {plural(self.imported, 'record')} from {plural(len(self.sources), 'old database')}"]
        if self.skipped_agents:
            one = self.skipped_agents == 1
            parts.append(f"{plural(self.skipped_agents, 'agent')} {'was' if one else 'were'} already in the database "
                         f"and {'is kept as it is' if one else 'are kept as they are'} (the old records are listed "
                         f"as skipped)")
        if self.errors:
            parts.append(f"{len(self.errors)} entries could not be imported (see the migration result)")
        return "; ".join(parts) + "."

    def to_wire(self) -> dict[str, Any]:
        return {"sources": [s.to_wire() for s in self.sources], "imported": self.imported,
                "errors": self.errors[:50], "dryRun": self.dry_run, "message": self.message()}
