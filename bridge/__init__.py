"""agent-tracker bridge: tracks which AI coding-agent setups work, across all your projects."""

__version__ = "0.1.0"
SERVER_NAME = "agent-tracker-bridge"
