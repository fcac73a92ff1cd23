"""How a setup is named in stored records: ``agent|provider/model`` (sessions' ``setups[]``)."""

from __future__ import annotations

UNKNOWN_AGENT = "unknown"
UNKNOWN_MODEL = "unknown-model"


def model_name(provider: str | None, model: str | None) -> str:
    """provider/model, else the model alone, else unknown-model."""
    if provider and model:
        return f"{provider}/{model}"
    return model or UNKNOWN_MODEL


def setup_name(agent_id: str | None, provider: str | None, model: str | None) -> str:
    return f"{agent_id or UNKNOWN_AGENT}|{model_name(provider, model)}"


def split_setup_name(name: str) -> tuple[str, str]:
    """(agent, model name) of a ``setups[]`` entry; missing parts become unknown."""
    agent, _, model = name.partition("|")
    return agent or UNKNOWN_AGENT, model or UNKNOWN_MODEL
