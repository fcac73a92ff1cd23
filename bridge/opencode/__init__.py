"""opencode: what the bridge knows of OpenCode's own files.

Owns: installing the plugin into OpenCode's config folder (install). May import config; never
imports rpc, tracking, report or migration.
"""
