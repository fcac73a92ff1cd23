"""Shared helpers for the store / tracking / journal tests: real LMDB environments, real bridges.

Nothing here mocks the bridge: a ``ServiceHarness`` is a real ``TrackingService`` on a real
``Store`` (LMDB in a temp dir) with a real crash ``Journal``; the bridge helpers spawn the real
``python -m bridge serve`` through tests/rpc_client.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from bridge.config import BridgeConfig, MiB, ScoringRules
from bridge.tracking.journal import Journal, journal_dir_for
from bridge.protocol.params import structure_params
from bridge.store import Store
from bridge.tracking.service import TrackingService
from rpc_client import Bridge, test_env

GRADES_TEXT = "-1 (bad), 1 (neutral), 2 (good) or 5 (excellence)"
FULL_HASH = "abc1234def5678abc1234def5678abc1234def56"  # 40 hex digits; short form abc1234
OTHER_FULL_HASH = "0123456789abcdef0123456789abcdef01234567"


def open_store(path: Path, max_size: int = 64 * MiB) -> Store:
    store = Store.open(BridgeConfig(database_path=str(path), max_database_size=max_size))
    assert store.available, store.error
    return store


@attrs.define
class ServiceHarness:
    """A real TrackingService on a real store, recording what it notifies the host."""

    store: Store
    service: TrackingService
    notifications: list[tuple[str, dict[str, Any]]]

    def send(self, method: str, params: dict[str, Any], received_at: str | None = None) -> Any:
        """Structure wire params exactly as the bridge does, then hand them to the service."""
        return self.service.handle(method, structure_params(method, params), received_at)

    def status(self, agent: str) -> dict[str, Any]:
        return self.service.status_of(agent)

    def stored(self, db: str, record_key: str) -> dict[str, Any] | None:
        with self.store.read() as view:
            return view.get(db, record_key)

    def count(self, db: str) -> int:
        with self.store.read() as view:
            return view.count(db)

    def all(self, db: str) -> list[tuple[str, dict[str, Any]]]:
        with self.store.read() as view:
            return list(view.scan(db))

    def of(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.notifications if name == method]


def make_harness(store: Store, rules: ScoringRules | None = None, *, journal: bool = True,
                 directory: str | None = None) -> ServiceHarness:
    notifications: list[tuple[str, dict[str, Any]]] = []
    service = TrackingService(
        store, rules or ScoringRules(),
        journal=Journal(journal_dir_for(store.path)) if journal else None,
        default_directory=directory,
        notify=lambda method, params: notifications.append((method, params)))
    return ServiceHarness(store, service, notifications)


def new_agent_status(agent: str, **changes: Any) -> dict[str, Any]:
    """agent.status of an agent as the defaults create it, with ``changes`` applied."""
    status = {"agentId": agent, "skillPoints": 1.0, "experiencePoints": 0.0,
              "communicationScore": 60.0, "totalCommits": 0, "totalBugs": 0, "totalPushes": 0,
              "halted": False, "pendingChanges": 0}
    status.update(changes)
    return status


def tool(session: str, call: str, *, tool_name: str = "read", success: bool = True,
         **extra: Any) -> dict[str, Any]:
    return {"sessionID": session, "callID": call, "tool": tool_name, "success": success, **extra}


def bash_commit(session: str, call: str, short_hash: str, message: str = "feat: x") -> dict[str, Any]:
    return tool(session, call, tool_name="bash", args={"command": f"git add -A && git commit -m '{message}'"},
                output=f"[main {short_hash}] {message}\n 1 file changed, 1 insertion(+)\n")


def bash_push(session: str, call: str, old: str, new: str) -> dict[str, Any]:
    return tool(session, call, tool_name="bash", args={"command": "git push origin main"},
                output=f"To github.com:me/repo.git\n   {old}..{new}  main -> main\n")


async def spawn_bridge(home: Path, database: Path | str, *args: str, directory: Path | None = None,
                       env: dict[str, str] | None = None, **config: Any) -> tuple[Bridge, dict[str, Any]]:
    """A real bridge on ``database``, initialized; returns it and its initialize result."""
    bridge = await Bridge.spawn(home, *args, env=env or test_env(home))
    try:
        result = await bridge.initialize(directory, databasePath=str(database), **config)
    except BaseException:
        bridge.kill()
        raise
    return bridge, result


def read_database(path: Path) -> dict[str, Any]:
    """Everything in a closed-by-others database, read with a fresh Store in this process."""
    store = open_store(path)
    try:
        with store.read() as view:
            return {db: dict(view.scan(db)) for db in ("agents", "sessions", "commits", "communication",
                                                       "retrospectives", "activities", "projects",
                                                       "meta")}
    finally:
        store.close()


def close_harness(harness: ServiceHarness) -> None:
    if harness.service.journal is not None:
        harness.service.journal.close(remove=True)
    harness.store.close()
