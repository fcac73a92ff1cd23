"""The real bridge as a subprocess for tests, never touching the real home directory."""

from __future__ import annotations

import os
from pathlib import Path

from bridge.rpc.client import BridgeProcess, RpcError

ROOT = Path(__file__).resolve().parent.parent.parent

__all__ = ["ROOT", "BridgeProcess", "RpcError", "bridge_env", "start_bridge"]


def bridge_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment with HOME/XDG_CONFIG_HOME in ``home`` and no AGENT_TRACKER_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_TRACKER_")}
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


async def start_bridge(home: Path, *args: str, env: dict[str, str] | None = None) -> BridgeProcess:
    """``python -m bridge serve ARGS`` run from the checkout, with ``home`` as its home."""
    return await BridgeProcess.spawn(*args, env=env or bridge_env(home), cwd=ROOT)
