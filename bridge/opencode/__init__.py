"""opencode: what the bridge knows of OpenCode's own files.

Owns: installing the plugin into OpenCode's config folder (install), writing an agent's definition
into a project's configuration (agent_config: `recommend --write`) and reading OpenCode's own
history database, read-only (history). May import config; never imports rpc, tracking, report
or migration.
"""
